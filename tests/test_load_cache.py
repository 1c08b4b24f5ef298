"""The load cache of manifests: a second load of unchanged files skips parsing and validation and
gives exactly what the first gave; any change, secret or problem means a full load."""

from __future__ import annotations

import marshal
import shutil
from pathlib import Path

import pytest

from reconciler.engine.normalize import desired
from reconciler.manifests import cache
from reconciler.manifests.loader import load
from tests.conftest import EXAMPLES
from tests.test_loader import write


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
    for cold, warm in zip(first.manifests, second.manifests):
        assert type(warm.job.spec) is type(cold.job.spec) and warm.job.spec.request is None
        assert warm.job.spec.policy == cold.job.spec.policy and warm.job.metadata.labels == cold.job.metadata.labels
        assert warm.desired == desired(warm.job.spec.api, warm.body, warm.body_sensitive)
    assert len(list(cache_dir.glob("manifests-*.marshal"))) == 1


def test_an_edited_manifest_or_evalscript_is_loaded_afresh(cache_dir, tmp_path):
    folder = tmp_path / "m"
    path = write(folder, "job")
    write(folder, "other")
    assert load([folder]).cached == 0 and load([folder]).cached == 2
    path.write_text(path.read_text().replace("description: test job", "description: changed"))
    result = load([folder])
    assert result.cached == 1
    assert {m.name: m.job.spec.description for m in result.manifests}["job"] == "changed"
    (folder / "script.js").write_text("//VERSION=3\nfunction setup() { return {changed: 1}; }\n")
    result = load([folder])
    assert result.cached == 0
    assert all("changed: 1" in m.body["processRequest"]["evalscript"] for m in result.manifests)
    (folder / "script.js").unlink()
    result = load([folder])
    assert result.cached == 0 and "evalscript file script.js not found" in result.errors[0].message


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
    [stored] = cache_dir.glob("manifests-*.marshal")
    stored.write_bytes(b"\x00not marshal")
    assert (load([folder]).cached, load([folder]).cached) == (0, 1)
    _, code, entries = marshal.loads(stored.read_bytes())
    stored.write_bytes(marshal.dumps((cache.FORMAT, "written by other code", entries)))
    result = load([folder])
    assert result.cached == 0 and result.manifests == expected


def test_removed_files_leave_the_cache(cache_dir, tmp_path):
    folder = tmp_path / "m"
    write(folder, "job")
    gone = write(folder, "gone")
    load([folder])
    gone.unlink()
    load([folder])
    [stored] = cache_dir.glob("manifests-*.marshal")
    assert list(marshal.loads(stored.read_bytes())[2]) == [str(folder / "job.yaml")]


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


def test_loading_makes_no_reference_cycles(cache_dir, examples, monkeypatch):
    """engine.run pauses the cycle collector while manifests load: that is only sound while
    loading leaves no cyclic garbage behind, from the YAML parser or the cache."""
    import gc

    load([examples])  # imports done, cache written
    for setting in ("off", str(cache_dir)):  # parsed and validated, then from the cache
        monkeypatch.setenv("RECONCILER_CACHE_DIR", setting)
        gc.collect()
        gc.disable()
        try:
            result = load([examples])
            assert result.cached == (0 if setting == "off" else result.files)
            assert gc.collect() == 0
        finally:
            gc.enable()


def test_a_cache_in_use_is_not_removed_as_stale(cache_dir, tmp_path):
    import os

    folder = tmp_path / "m"
    write(folder, "job")
    load([folder])
    [stored] = cache_dir.glob("manifests-*.marshal")
    month_ago = stored.stat().st_mtime - cache.STALE_AFTER - 60
    os.utime(stored, (month_ago, month_ago))
    assert load([folder]).cached == 1  # nothing changed, but it was used
    assert stored.stat().st_mtime > month_ago + cache.STALE_AFTER
    other = tmp_path / "other"
    write(other, "job")
    old, old_live = cache_dir / "manifests-not-used-for-a-month.marshal", cache_dir / "live-not-used-for-a-month.marshal"
    foreign = cache_dir / "not-ours.marshal"
    for path in (old, old_live, foreign):
        path.write_bytes(b"x")
        os.utime(path, (month_ago, month_ago))
    load([other])  # a write elsewhere sweeps the folder, of its own files only
    assert stored.exists() and not old.exists() and not old_live.exists() and foreign.exists()
