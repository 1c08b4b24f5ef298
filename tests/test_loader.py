"""Loading manifests: the examples, env references, sensitivity, evalscripts, names across files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from reconciler.manifests.loader import load
from tests.conftest import EXAMPLES

MANIFEST = """\
apiVersion: reconciler/v1
kind: BatchJob
metadata:
  name: {name}
spec:
  description: test job
  evalscriptFile: script.js
  request:
    processRequest:
      input:
        bounds:
          bbox: [8.44, 41.31, 9.66, 43.1]
        data:
          - type: sentinel-2-l2a
      output:
        responses:
          - identifier: default
            format:
              type: image/tiff
    input:
      type: tiling-grid
      id: 0
      resolution: 60
    output:
      type: raster
      delivery:
        s3:
          url: {url}
{extra}"""


def write(folder: Path, name: str = "job", url: str = "s3://bucket/prefix", extra: str = "", file: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "script.js").write_text("//VERSION=3\nfunction setup() { return {}; }\n")
    path = folder / (file or f"{name}.yaml")
    path.write_text(MANIFEST.format(name=name, url=url, extra=extra))
    return path


def test_the_examples_are_valid_and_cover_both_apis():
    result = load([EXAMPLES])
    assert result.diagnostics == []
    assert result.files == 5
    by_name = {m.name: m for m in result.manifests}
    assert set(by_name) == {
        "corsica-max-ndvi", "corsica-max-ndvi-zarr", "corsica-geopackage", "corsica-max-ndvi-v1", "corsica-ndvi-collection"}
    assert (by_name["corsica-max-ndvi"].api, by_name["corsica-max-ndvi-v1"].api) == ("v2", "v1")
    assert by_name["corsica-geopackage"].state == "created"
    body = by_name["corsica-max-ndvi"].body
    assert body["processRequest"]["evalscript"].startswith("//VERSION=3")
    assert "description" not in body and body["input"] == {"type": "tiling-grid", "id": 0, "resolution": 60.0}


def test_default_path_is_the_manifests_folder(tmp_path, monkeypatch):
    write(tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    result = load()
    assert [m.name for m in result.manifests] == ["job"] and result.files == 1


def test_defaults_of_spec_and_policy(tmp_path):
    [manifest] = load([write(tmp_path)]).manifests
    assert (manifest.api, manifest.state) == ("v2", "started")
    assert (manifest.policy.max_restarts, manifest.policy.max_cost_pu, manifest.policy.on_spec_change,
            manifest.policy.on_remove) == (0, None, "refuse", "forget")


def test_env_references_are_sensitive_and_resolved_only_on_request(tmp_path):
    path = write(tmp_path, url="s3://${env:BUCKET}/prefix")
    unresolved = load([path])
    assert unresolved.diagnostics == []  # the URL pattern is checked once the value is known
    [manifest] = unresolved.manifests
    url_path = ("spec", "request", "output", "delivery", "s3", "url")
    assert url_path in manifest.sensitive
    assert manifest.body["output"]["delivery"]["s3"]["url"] == "s3://${env:BUCKET}/prefix"

    resolved = load([path], resolve_env=True, environ={"BUCKET": "real-bucket"})
    assert resolved.manifests[0].body["output"]["delivery"]["s3"]["url"] == "s3://real-bucket/prefix"
    assert url_path in resolved.manifests[0].sensitive

    missing = load([path], resolve_env=True, environ={})
    [d] = missing.diagnostics
    assert (d.line, d.path) == (28, "spec.request.output.delivery.s3.url") and "BUCKET is not set" in d.message

    bad_value = load([path], resolve_env=True, environ={"BUCKET": "Not A Bucket"})
    assert "expected an S3 URL" in bad_value.diagnostics[0].message


def test_a_reference_where_the_schema_wants_a_fixed_word_is_checked_once_resolved(tmp_path):
    path = write(tmp_path, extra="  policy:\n    onRemove: ${env:ON_REMOVE}\n")
    result = load([path])
    assert result.diagnostics == [] and result.manifests == [] and result.deferred == ["job"]
    assert load([path], resolve_env=True, environ={"ON_REMOVE": "stop"}).manifests[0].policy.on_remove == "stop"
    [error] = load([path], resolve_env=True, environ={"ON_REMOVE": "delete"}).errors
    assert error.path == "spec.policy.onRemove"


def test_env_references_in_plain_strings_keep_the_manifest(tmp_path):
    path = write(tmp_path, url="s3://bucket/${env:PREFIX}")
    [manifest] = load([path]).manifests
    assert ("spec", "request", "output", "delivery", "s3", "url") in manifest.sensitive
    assert manifest.body["output"]["delivery"]["s3"]["url"] == "s3://bucket/${env:PREFIX}"


def test_literal_credentials_are_sensitive_and_warned_about(tmp_path):
    extra = "          accessKey: AKIAEXAMPLE\n          secretAccessKey: ${env:SECRET}\n"
    result = load([write(tmp_path, extra=extra)])
    [manifest] = result.manifests
    assert {("spec", "request", "output", "delivery", "s3", "accessKey"),
            ("spec", "request", "output", "delivery", "s3", "secretAccessKey")} <= manifest.sensitive
    [warning] = result.diagnostics
    assert not warning.is_error and warning.path.endswith("accessKey") and warning.line == 29


def test_evalscript_files_are_read_relative_to_the_manifest_and_cached(tmp_path):
    first = write(tmp_path / "a", name="one")
    second = write(tmp_path / "b", name="two")
    (second.parent / "script.js").write_text("//VERSION=3\n// the other one\n")
    result = load([first, second])
    scripts = {m.name: m.body["processRequest"]["evalscript"] for m in result.manifests}
    assert "the other one" in scripts["two"] and "the other one" not in scripts["one"]


def test_a_name_repeated_in_a_later_document_is_pointed_at_in_that_document(tmp_path):
    first = write(tmp_path, name="x", file="a.yaml").read_text()
    (tmp_path / "a.yaml").write_text(first + "---\n" + MANIFEST.format(name="y", url="s3://bucket/prefix", extra=""))
    write(tmp_path, name="y", file="b.yaml")
    for cached in (0, 2):  # then from the load cache, which keeps neither document's text
        result = load([tmp_path], use_cache=True)
        assert result.cached == cached
        [d] = result.errors
        second_name = len(first.splitlines()) + 1 + 4  # after a.yaml's first document and its `---`
        assert (d.file, d.line, d.column) == (str(tmp_path / "b.yaml"), 4, 9)
        assert d.message == f"the name 'y' is already used at {tmp_path / 'a.yaml'}:{second_name}"


def test_inline_evalscript(tmp_path):
    path = write(tmp_path)
    text = path.read_text().replace("  evalscriptFile: script.js\n", "")
    text = text.replace("    processRequest:\n", "    processRequest:\n      evalscript: |\n        //VERSION=3\n        x\n")
    path.write_text(text)
    [manifest] = load([path]).manifests
    assert manifest.body["processRequest"]["evalscript"] == "//VERSION=3\nx\n"


def test_names_are_unique_across_files_and_the_second_is_reported(tmp_path):
    write(tmp_path, name="same", file="a.yaml")
    write(tmp_path, name="same", file="b.yaml")
    result = load([tmp_path])
    [d] = result.errors
    assert d.file.endswith("b.yaml") and d.line == 4 and "already used at" in d.message and "a.yaml:4" in d.message
    assert [m.file for m in result.manifests] == [str(tmp_path / "a.yaml")]


def test_multi_document_files_and_hidden_folders(tmp_path):
    path = write(tmp_path, name="one")
    path.write_text(path.read_text() + "---\n" + MANIFEST.format(name="two", url="s3://bucket/x", extra=""))
    hidden = tmp_path / ".git"
    write(hidden, name="ignored")
    result = load([tmp_path])
    assert [m.name for m in result.manifests] == ["one", "two"]
    assert [m.line for m in result.manifests] == [1, 30]


def test_a_file_named_twice_is_loaded_once(tmp_path):
    path = write(tmp_path)
    result = load([path, tmp_path])
    assert result.files == 1 and result.diagnostics == []


def test_errors_in_one_document_do_not_hide_the_others(tmp_path):
    write(tmp_path, name="good", file="a.yaml")
    write(tmp_path, name="bad", file="b.yaml", extra="  policy:\n    maxRestarts: -1\n")
    write(tmp_path, name="worse", file="c.yaml", url="http://x")
    result = load([tmp_path])
    assert [m.name for m in result.manifests] == ["good"]
    assert [(Path(d.file).name, d.path) for d in result.errors] == [
        ("b.yaml", "spec.policy.maxRestarts"), ("c.yaml", "spec.request.output.delivery.s3.url")]


def test_example_folder_can_be_copied_and_validated_elsewhere(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "m")
    assert len(load([tmp_path / "m"]).manifests) == 5


@pytest.mark.parametrize("sensitive_key", ["accessKey", "secretAccessKey"])
def test_sensitive_paths_cover_geopackage_features_too(tmp_path, sensitive_key):
    path = write(tmp_path)
    text = path.read_text().replace(
        "    input:\n      type: tiling-grid\n      id: 0\n      resolution: 60\n",
        "    input:\n      type: geopackage\n      features:\n        s3:\n          url: s3://bucket/f.gpkg\n"
        "          accessKey: ${env:A}\n          secretAccessKey: ${env:B}\n",
    )
    path.write_text(text)
    [manifest] = load([path]).manifests
    assert ("spec", "request", "input", "features", "s3", sensitive_key) in manifest.sensitive


def test_discovery_order_and_what_it_skips(tmp_path):
    from reconciler.manifests.loader import discover

    root = tmp_path / "m"
    for name in ("b.yaml", "a-c.yaml", "a/b.yaml", "a/z/y.yml", "A.yaml", "x.YAML", "notes.txt", ".hidden.yaml",
                 ".git/in-hidden.yaml", "a/.cache/in-hidden.yaml", "é.yaml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "outside.yaml").write_text("x")
    (root / "linked-folder").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "linked-file.yaml").symlink_to(tmp_path / "elsewhere" / "outside.yaml")
    (root / "broken.yaml").symlink_to(tmp_path / "nowhere.yaml")
    diagnostics = []
    found = discover([root], diagnostics)
    # what pathlib's rglob gives, sorted as paths compare, but for the link leading out of the
    # repository (the `.git` folder in m makes m the repository)
    expected = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
                      and not any(part.startswith(".") for part in p.relative_to(root).parts)
                      and p.name != "linked-file.yaml")
    assert [f.path for f in found] == [str(p) for p in expected]
    assert {f.root for f in found} == {str(root)}
    assert [os.path.relpath(p, root) for p, _ in found] == ["A.yaml", "a/b.yaml", "a/z/y.yml", "a-c.yaml", "b.yaml", "é.yaml"]
    assert [(d.file, d.message) for d in diagnostics] == [
        (str(root / "linked-file.yaml"), f"not read: this link resolves to {tmp_path / 'elsewhere' / 'outside.yaml'}, "
                                         f"outside the repository ({root})")]


def test_files_are_named_as_the_folder_was_written(tmp_path, monkeypatch):
    from reconciler.manifests.loader import discover

    (tmp_path / "a").mkdir()
    for name in ("top.yaml", "a/inner.yaml"):
        (tmp_path / name).write_text("x")
    monkeypatch.chdir(tmp_path)
    names = lambda folder: [found.path for found in discover([folder], [])]  # noqa: E731
    assert names(".") == ["a/inner.yaml", "top.yaml"]  # as pathlib writes them: no "./" before each
    assert names("./a/") == names("a") == ["a/inner.yaml"]
    assert names(tmp_path) == [str(tmp_path / "a" / "inner.yaml"), str(tmp_path / "top.yaml")]


def test_references_and_credentials_spelled_with_escapes_are_still_found(tmp_path):
    """Files that spell neither `${env:` nor a credential key skip the scan; an escape could spell
    either, so files with one are scanned."""
    folder = tmp_path / "m"
    write(folder, "by-escape", url='"\\x24{env:RESULT_URL}"')
    write(folder, "key-by-escape", extra='          "\\x61ccessKey": AKIA-ESCAPED\n          secretAccessKey: s\n')
    result = load([folder], resolve_env=True, environ={"RESULT_URL": "s3://bucket/from-env"})
    by_name = {m.name: m for m in result.manifests}
    assert by_name["by-escape"].body["output"]["delivery"]["s3"]["url"] == "s3://bucket/from-env"
    assert ("spec", "request", "output", "delivery", "s3", "url") in by_name["by-escape"].sensitive
    assert ("spec", "request", "output", "delivery", "s3", "accessKey") in by_name["key-by-escape"].sensitive
    assert [d.message for d in result.diagnostics if d.file.endswith("key-by-escape.yaml")] == [
        "a credential is written in the manifest"] * 2


def test_a_load_holds_each_short_string_once_across_its_files(tmp_path):
    """The parser makes every scalar anew, and only plain ones pass the resolver's bounded cache:
    a load of many manifests written as JSON (every string quoted, as `sandbox serve --seed` writes
    them) holds each equal key and short value once all the same (yamldoc.read_documents with one
    `strings` for the load), as a read of the load cache does."""
    (tmp_path / "script.js").write_text("//VERSION=3\nfunction setup() { return {}; }\n")
    for name in ("one", "two"):
        request = {"processRequest": {"input": {"bounds": {"bbox": [8.44, 41.31, 9.66, 43.1]},
                                                "data": [{"type": "sentinel-2-l2a"}]},
                                      "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]}},
                   "input": {"type": "tiling-grid", "id": 0, "resolution": 60},
                   "output": {"type": "raster", "delivery": {"s3": {"url": "s3://bucket/shared"}}}}
        (tmp_path / f"{name}.yaml").write_text(json.dumps({
            "apiVersion": "reconciler/v1", "kind": "BatchJob", "metadata": {"name": name},
            "spec": {"description": "test job", "evalscriptFile": "script.js", "request": request}}))
    one, two = sorted(load([tmp_path]).manifests, key=lambda m: m.name)
    pairs = [(one.body["output"]["delivery"]["s3"]["url"], two.body["output"]["delivery"]["s3"]["url"]),
             (one.body["processRequest"]["input"]["data"][0]["type"], two.body["processRequest"]["input"]["data"][0]["type"]),
             (next(iter(one.body["output"])), next(iter(two.body["output"]))),
             (one.description, two.description)]
    for first, second in pairs:
        assert first == second and first is second, first
