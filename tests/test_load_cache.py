"""The load cache of manifests: a second load of unchanged files skips parsing and validation and
gives exactly what the first gave; any change, secret or problem means a full load."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from reconciler.canonical import desired
from reconciler.manifests import cache, loader
from tests.conftest import EXAMPLES
from tests.test_loader import write


def load(*args, **kwargs):
    """What `validate` and `plan` do: load with the cache."""
    return loader.load(*args, use_cache=True, **kwargs)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def examples(tmp_path) -> Path:
    return Path(shutil.copytree(EXAMPLES, tmp_path / "manifests"))


def test_a_second_load_comes_from_the_cache_and_equals_the_first(cache_dir, examples):
    first, second = load([examples], resolve_env=True), load([examples], resolve_env=True)
    assert (first.cached, second.cached) == (0, first.files)
    assert first.diagnostics == second.diagnostics == []
    assert second.manifests == first.manifests
    for cold, warm in zip(first.manifests, second.manifests, strict=True):
        assert (warm.api, warm.state, warm.description) == (cold.api, cold.state, cold.description)
        assert warm.policy == cold.policy and warm.labels == cold.labels
        assert warm.desired == desired(warm.api, warm.body, warm.body_sensitive)
    assert len(list(cache_dir.glob("manifests-*.json"))) == 1


def test_an_edited_manifest_or_evalscript_is_loaded_afresh(cache_dir, tmp_path):
    folder = tmp_path / "m"
    path = write(folder, "job")
    write(folder, "other")
    assert load([folder]).cached == 0 and load([folder]).cached == 2
    path.write_text(path.read_text().replace("description: test job", "description: changed"))
    result = load([folder])
    assert result.cached == 1
    assert {m.name: m.description for m in result.manifests}["job"] == "changed"
    (folder / "script.js").write_text("//VERSION=3\nfunction setup() { return {changed: 1}; }\n")
    result = load([folder])
    assert result.cached == 0
    assert all("changed: 1" in m.body["processRequest"]["evalscript"] for m in result.manifests)
    (folder / "script.js").unlink()
    result = load([folder])
    assert result.cached == 0 and "evalscript file script.js not found" in result.errors[0].message


def test_entries_used_again_are_written_back_as_they_were_read(cache_dir, examples):
    """An entry read from the cache is not kept: when another file changes, it is made again from
    its manifests, and must be what was read."""
    load([examples], resolve_env=True)
    [stored] = cache_dir.glob("manifests-*.json")
    before = json.loads(stored.read_bytes())["entries"]
    edited = sorted(examples.glob("*.yaml"))[0]
    edited.write_text(edited.read_text().replace("description: ", "description: edited ", 1))
    assert load([examples], resolve_env=True).cached == len(before) - 1
    after = json.loads(stored.read_bytes())["entries"]
    assert after.keys() == before.keys() and after[str(edited)] != before[str(edited)]
    assert {k: v for k, v in after.items() if k != str(edited)} == {k: v for k, v in before.items() if k != str(edited)}
    assert load([examples], resolve_env=True).cached == len(before)


def test_files_with_secrets_or_problems_are_never_stored(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "by-reference", url="${env:RESULT_URL}")
    write(folder, "literal", extra="          accessKey: AKIA-LITERAL-KEY\n          secretAccessKey: literal-secret-value\n")
    write(folder, "clean")
    environ = {"RESULT_URL": "s3://bucket/s3cr3t-prefix"}
    first = load([folder], resolve_env=True, environ=environ)
    again = load([folder], resolve_env=True, environ=environ)
    assert [d.severity.value for d in first.diagnostics] == ["warning", "warning"]  # the literal credentials
    assert again.cached == 1 and again.manifests == first.manifests and again.diagnostics == first.diagnostics
    stored = b"".join(p.read_bytes() for p in cache_dir.iterdir())
    for secret in (b"s3cr3t-prefix", b"${env:", b"AKIA-LITERAL-KEY", b"literal-secret-value"):
        assert secret not in stored
    assert b"clean" in stored


def test_names_repeated_across_files_are_reported_from_cached_files_too(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "same", file="a.yaml")
    write(folder, "same", file="b.yaml")
    first, second = load([folder]), load([folder])
    assert second.cached == 2
    assert second.diagnostics == first.diagnostics
    assert [(d.file, d.line, d.message) for d in second.errors] == [
        (str(folder / "b.yaml"), 4, f"the name 'same' is already used at {folder / 'a.yaml'}:4")]


def test_a_damaged_or_foreign_cache_is_ignored_and_replaced(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "job")
    expected = load([folder]).manifests
    [stored] = cache_dir.glob("manifests-*.json")
    stored.write_bytes(b"\x00not json")
    assert (load([folder]).cached, load([folder]).cached) == (0, 1)
    document = json.loads(stored.read_bytes())
    stored.write_text(json.dumps({**document, "code": "written by other code"}))
    result = load([folder])
    assert result.cached == 0 and result.manifests == expected


def test_removed_files_leave_the_cache(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "job")
    gone = write(folder, "gone")
    load([folder])
    gone.unlink()
    load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    assert list(json.loads(stored.read_bytes())["entries"]) == [str(folder / "job.yaml")]


def test_off_means_no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RECONCILER_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path / "m", "job")
    assert (load([tmp_path / "m"]).cached, load([tmp_path / "m"]).cached) == (0, 0)
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_the_default_place_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("RECONCILER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.folder() == tmp_path / "xdg" / "reconciler"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.folder() == tmp_path / "home" / ".cache" / "reconciler"


def test_a_cache_in_use_is_not_removed_as_stale(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "job")
    load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    month_ago = stored.stat().st_mtime - cache.STALE_AFTER - 60
    os.utime(stored, (month_ago, month_ago))
    assert load([folder]).cached == 1  # nothing changed, but it was used
    assert stored.stat().st_mtime > month_ago + cache.STALE_AFTER
    other = tmp_path / "other"
    write(other, "job")
    old, old_live = cache_dir / "manifests-not-used-for-a-month.marshal", cache_dir / "live-not-used-for-a-month.marshal"
    foreign = cache_dir / "not-ours.json"
    for path in (old, old_live, foreign):
        path.write_bytes(b"x")
        os.utime(path, (month_ago, month_ago))
    load([other])  # a write elsewhere sweeps the folder, of its own files only
    assert stored.exists() and not old.exists() and not old_live.exists() and foreign.exists()


# --- a planted or tampered cache (DESIGN §8): ignored, never followed, never a crash ---------------


def _entries(stored: Path) -> dict:
    """Each file's entry."""
    return json.loads(stored.read_bytes())["entries"]


def _rewrite(stored: Path, entries: dict) -> None:
    """Plant `entries` as the cache writes them (the reader looks at how the file starts first)."""
    stored.write_text(json.dumps({**json.loads(stored.read_bytes()), "entries": entries}, separators=(",", ":")))


@pytest.mark.parametrize("damage", [
    lambda document: document.__setitem__(2, {**document[2], "metadata": {"name": 5}}),  # a name that is no string
    lambda document: document[2]["spec"]["policy"].__setitem__("maxRestarts", "many"),
    lambda document: document.__setitem__(3, ["not", "a", "body"]),
    lambda document: document.__setitem__(5, ["only-one-digest"]),
    lambda document: document.__setitem__(4, "scripts/not-checked.js"),  # an evalscript the entry did not check
    lambda document: document.clear(),
])
def test_a_malformed_entry_is_read_afresh_never_a_crash(cache_dir, tmp_path, damage):
    folder = tmp_path / "m"
    write(folder, "job")
    expected = load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    entries = _entries(stored)
    [entry] = entries.values()
    damage(entry[2][0])
    _rewrite(stored, entries)
    result = load([folder])
    assert result.cached == 0 and result.manifests == expected.manifests and result.diagnostics == []
    assert load([folder]).cached == 1  # and the fresh reading replaced the entry


@pytest.mark.parametrize("text", ["[1, 2", "a string", None, ["not", "an entry"], [1, [], []], {"a": 1}])
def test_an_entry_that_is_not_one_is_read_afresh(cache_dir, tmp_path, text):
    folder = tmp_path / "m"
    write(folder, "job")
    expected = load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    _rewrite(stored, {file: text for file in _entries(stored)})
    result = load([folder])
    assert result.cached == 0 and result.manifests == expected.manifests and result.diagnostics == []


def test_an_entry_is_not_validated_again_yet_an_edited_request_only_misleads_a_plan_never_crashes_it(
        cache_dir, tmp_path):
    """The entry is bound to the file's bytes by their digest: its request is not validated again
    (that is the speed-up). One edited to break its model reaches a plan (as the README says a
    planted entry can), which shows what it can and never a traceback; apply never reads it."""
    folder = tmp_path / "m"
    write(folder, "job")
    load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    entries = _entries(stored)
    [entry] = entries.values()
    entry[2][0][3]["input"]["resolution"] = "sixty"
    entry[2][0][3]["processRequest"]["input"]["bounds"] = {"bbox": "everywhere"}
    _rewrite(stored, entries)
    result = load([folder])
    assert result.cached == 1 and result.manifests[0].body["input"]["resolution"] == "sixty"
    from reconciler.engine.estimate import Estimator

    estimator = Estimator()
    assert estimator(result.manifests[0]) is None and estimator.card(result.manifests[0]).tiles is None
    assert loader.load([folder]).manifests[0].body["input"]["resolution"] == 60  # what apply loads


def test_an_edited_valid_entry_never_reaches_what_apply_loads(cache_dir, tmp_path):
    """An entry that passes the models can mislead a plan (the README says so), never apply: apply
    and reconcile load without the cache, and a saved plan is derived again without it."""
    folder = tmp_path / "m"
    write(folder, "job")
    load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    entries = _entries(stored)
    [entry] = entries.values()
    entry[2][0][3]["output"]["delivery"]["s3"]["url"] = "s3://attacker-bucket/loot"
    _rewrite(stored, entries)
    url = lambda result: result.manifests[0].body["output"]["delivery"]["s3"]["url"]  # noqa: E731
    assert url(load([folder])) == "s3://attacker-bucket/loot"  # what a plan with the cache would show
    assert url(loader.load([folder])) == "s3://bucket/prefix" and loader.load([folder]).cached == 0


def test_a_fifo_a_device_or_a_link_as_the_cache_file_is_an_empty_cache(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "job")
    load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    for plant in (lambda: os.mkfifo(stored), lambda: stored.symlink_to("/dev/zero"),
                  lambda: stored.symlink_to(tmp_path / "elsewhere.json")):
        stored.unlink()
        plant()
        outcome: list = []
        # B023: the thread is joined within this iteration, while `outcome` is still this one's
        reader = threading.Thread(target=lambda: outcome.append(load([folder])), daemon=True)  # noqa: B023
        reader.start()
        reader.join(timeout=30)
        assert outcome and outcome[0].cached == 0 and outcome[0].manifests, "a planted cache file hung the load"
        assert stored.is_file() and not stored.is_symlink()  # replaced by a regular file
    assert not (tmp_path / "elsewhere.json").exists()  # a link is replaced, never written through


def test_an_oversized_cache_file_is_not_read(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "job")
    load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    with open(stored, "r+b") as f:
        f.truncate(cache.MAX_BYTES + 1)  # sparse: costs no disk, and must cost no memory either
    assert load([folder]).cached == 0 and stored.stat().st_size < cache.MAX_BYTES


def test_writes_cannot_be_redirected_by_a_planted_temporary_name(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "job")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    cache_dir.mkdir()
    name = cache._name("\0".join([os.getcwd(), str(folder)]))
    for planted in (f"{name}.{os.getpid()}.tmp", f".{name}.tmp", name):
        (cache_dir / planted).unlink(missing_ok=True)
        (cache_dir / planted).symlink_to(victim)
    load([folder])
    assert victim.read_text() == "keep me"
    assert (cache_dir / name).is_file() and not (cache_dir / name).is_symlink()
    assert load([folder]).cached == 1


def test_a_write_that_fails_midway_leaves_the_cache_file_as_it_was_and_no_temporary_file(cache_dir, tmp_path):
    """The file is written entry by entry: a failure after the first leaves nothing half written."""
    folder = tmp_path / "m"
    write(folder, "job")
    load([folder])
    [stored] = cache_dir.glob("manifests-*.json")
    before = stored.read_bytes()

    def entries():
        yield "a.yaml", ["0" * 32, [], []]
        raise ValueError("a value JSON cannot hold")

    cache.write_entries(stored, entries())
    assert stored.read_bytes() == before
    assert sorted(p.name for p in cache_dir.iterdir()) == [stored.name]
    assert load([folder]).cached == 1
