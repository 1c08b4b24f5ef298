"""Shards (reconciler.toml): each part of the manifests with its own lockfile and lease, so
independent teams reconcile in parallel; the same shard twice waits or exits 3."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import SandboxProcess
from tests.test_engine_chaos import write_manifests

CONFIG = """\
[shards.agri]
paths = ["manifests/agri"]
state = "s3://reconciler-state/shards/agri.json"

[shards.forest]
paths = ["manifests/forest"]
state = "s3://reconciler-state/shards/forest.json"
"""


def run(env, cwd, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reconciler", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_leases(s3, applies: dict[str, subprocess.Popen], holder: str, timeout: float = 120) -> set[str]:
    """Poll the sandbox S3 until the lease of every shard in `applies` has been seen while its apply ran
    (a quick shard may release its lease before a slow one takes its own) and `holder`'s is still held."""
    from botocore.exceptions import ClientError

    def held(shard: str) -> bool:
        try:
            s3.head_object(Bucket="reconciler-state", Key=f"shards/{shard}.json.lease")
            return True
        except ClientError:
            return False

    seen, deadline = set(), time.monotonic() + timeout
    while not (seen == set(applies) and held(holder)):
        seen |= {shard for shard in set(applies) - seen if held(shard)}
        ended = sorted(shard for shard, apply in applies.items()
                       if apply.poll() is not None and (shard not in seen or shard == holder))
        assert not ended, f"the apply of {ended} ended first: leases seen {sorted(seen)}"
        assert time.monotonic() < deadline, f"leases seen after {timeout} s: {sorted(seen)}"
        time.sleep(0.02)
    return seen


def test_shards_plan_apart_apply_in_parallel_and_contend_only_with_themselves(tmp_path):
    sandbox = SandboxProcess(tmp_path / "sandbox", "--tile-seconds", "0.1", "--workers", "2")
    try:
        (tmp_path / "reconciler.toml").write_text(CONFIG)
        write_manifests(tmp_path / "manifests" / "agri", "agri")
        for path in (tmp_path / "manifests" / "agri").glob("*.yaml"):  # 66 tiles: agri's apply takes a while
            path.write_text(path.read_text().replace("bbox: [9.0, 42.0, 9.05, 42.05]", "bbox: [8.44, 41.31, 9.66, 43.1]"))
        write_manifests(tmp_path / "manifests" / "forest", "forest")
        env = {**os.environ, **sandbox.env, "NO_COLOR": "1"}
        env.pop("RECONCILER_STATE")

        plan = run(env, tmp_path, "plan", "--detailed-exitcode")
        out, err = plan.communicate(timeout=120)
        assert plan.returncode == 2, out + err
        assert "== shard agri" in out and "== shard forest" in out and out.count("Plan: 4 to create") == 2

        agri = run(env, tmp_path, "apply", "--shard", "agri", "--auto-approve", "--wait", "--poll-interval", "100ms")
        forest = run(env, tmp_path, "apply", "--shard", "forest", "--auto-approve", "--wait", "--poll-interval", "100ms")
        # each shard takes its own lease; with agri's held, a second run of agri must not get in
        assert wait_for_leases(sandbox.s3(), {"agri": agri, "forest": forest}, holder="agri") == {"agri", "forest"}
        again = run(env, tmp_path, "apply", "--shard", "agri", "--auto-approve")
        out_again, err_again = again.communicate(timeout=120)
        waiting = run(env, tmp_path, "apply", "--shard", "agri", "--auto-approve", "--lock-timeout", "120s")
        for process in (agri, forest):
            out, err = process.communicate(timeout=300)
            assert process.returncode == 0, out + err
        assert again.returncode == 3, out_again + err_again
        assert "the state is locked by" in err_again and "lease" in err_again
        out, err = waiting.communicate(timeout=300)
        assert waiting.returncode == 0, out + err  # it waited for the lease, then found nothing to do

        check = run(env, tmp_path, "plan", "--detailed-exitcode")
        out, err = check.communicate(timeout=120)
        assert check.returncode == 0, out + err
        status = run(env, tmp_path, "status", "--shard", "forest")
        out, _ = status.communicate(timeout=120)
        assert "forest-started" in out and "agri-" not in out
    finally:
        sandbox.stop()


def test_bad_configuration_and_unknown_shards_are_clear_errors(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reconciler.toml").write_text(CONFIG)
    code, _, err = run_cli("plan", "--shard", "nope")
    assert code == 1 and "no such shard" in err and "agri, forest" in err
    (tmp_path / "reconciler.toml").write_text('[shards.agri]\npaths = "manifests"\nstate = "x"\n')
    code, _, err = run_cli("plan")
    assert code == 1 and "shards.agri.paths must be a non-empty list" in err
    (tmp_path / "reconciler.toml").write_text("[shards.agri\n")
    code, _, err = run_cli("status")
    assert code == 1 and "reconciler.toml" in err and "Traceback" not in err


def test_rebuilding_one_shards_lockfile_takes_only_its_own_jobs(sandbox, tmp_path, run_cli, monkeypatch):
    """Two shards applied; one lockfile is lost and rebuilt: it takes the jobs of its own manifests
    only, the other shard's lockfile is untouched and both plans are still empty."""
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RECONCILER_STATE")
    monkeypatch.setenv("NO_COLOR", "1")
    prefix = tmp_path.name[-10:].lower().replace("_", "-").strip("-")
    (tmp_path / "reconciler.toml").write_text(CONFIG.replace("shards/", f"{prefix}/"))
    write_manifests(tmp_path / "manifests" / "agri", f"agri-{prefix}")
    write_manifests(tmp_path / "manifests" / "forest", f"forest-{prefix}")
    code, out, err = run_cli("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")
    assert code == 0, out + err
    s3 = sandbox.s3()
    forest_before = s3.get_object(Bucket="reconciler-state", Key=f"{prefix}/forest.json")["Body"].read()
    s3.delete_object(Bucket="reconciler-state", Key=f"{prefix}/agri.json")

    code, out, err = run_cli("state", "rebuild", "--shard", "agri")
    assert code == 0, out + err
    assert out.count(f"+ agri-{prefix}-") == 4 and "forest-" not in out, out
    assert s3.get_object(Bucket="reconciler-state", Key=f"{prefix}/forest.json")["Body"].read() == forest_before
    for shard in ("agri", "forest"):
        code, out, err = run_cli("plan", "--shard", shard, "--detailed-exitcode")
        assert code == 0, out + err
        assert "forget" not in out and "adopt" not in out


BAD_SHARD_NAMES = {
    "quote": ("'x\")or(true)or(\"'", 'x")or(true)or("'),
    "angle-bracket": ('"<script>"', "<script>"),
    "space": ('"agri team"', "agri team"),
    "uppercase": ("Agri", "Agri"),
    "64-characters": ("a" * 64, "a" * 64),
    "newline": ('"agri\\nforest"', "agri\nforest"),
    "leading-dash": ("-agri", "-agri"),
}


@pytest.mark.parametrize("key, name", BAD_SHARD_NAMES.values(), ids=BAD_SHARD_NAMES)
def test_a_shard_name_must_follow_the_manifest_name_rule(tmp_path, run_cli, key, name):
    from reconciler.settings import InvalidSettings
    from reconciler.shards import load_shards

    (tmp_path / "reconciler.toml").write_text(CONFIG + f'\n[shards.{key}]\npaths = ["manifests"]\nstate = "x.json"\n')
    with pytest.raises(InvalidSettings) as info:
        load_shards(tmp_path)
    shown = repr(name)
    assert info.value.message == (f"{tmp_path / 'reconciler.toml'}: the shard name {shown} does not follow the name "
                                  "rule: a name is 1-63 lowercase letters, digits and '-', starting and ending with "
                                  "a letter or digit")
    code, out, err = run_cli("shards")
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and out == "" and len(errors) == 1 and len(err.splitlines()) <= 2, err
    assert "Traceback" not in err and shown in errors[0] and "name rule" in errors[0]


def test_a_long_bad_shard_name_is_quoted_cut_short(tmp_path, run_cli):
    from reconciler.settings import InvalidSettings
    from reconciler.shards import load_shards

    name = '"><img src=x>' + "A" * 5000
    (tmp_path / "reconciler.toml").write_text(f"[shards.'{name}']\npaths = [\"manifests\"]\nstate = \"x.json\"\n")
    with pytest.raises(InvalidSettings) as info:
        load_shards(tmp_path)
    assert f"the shard name {name[:80]!r}… does not follow" in info.value.message and len(info.value.message) < 400
    code, _, err = run_cli("shards")
    assert code == 1 and len(err.splitlines()) <= 2 and "A" * 81 not in err


def test_valid_shard_names_are_taken(tmp_path):
    from reconciler.shards import load_shards

    (tmp_path / "reconciler.toml").write_text(CONFIG.replace("forest", "f" * 63) + '[shards.0-eu-1]\npaths = ["m"]\nstate = "s.json"\n')
    assert sorted(load_shards(tmp_path)) == ["0-eu-1", "agri", "f" * 63]
