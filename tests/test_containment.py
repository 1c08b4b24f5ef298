"""Containment (DESIGN §1, §8): a pull request's paths cannot make the tool read files outside the
repository, hidden files inside it, or anything that is not a regular file. Each escape is a
one-line diagnostic naming the file and the rule, and the content of what it points at appears
in no output of `validate` or `plan` (text or JSON)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from tests.conftest import EXAMPLES, copy_evalscripts

EXAMPLE = EXAMPLES / "corsica-max-ndvi.yaml"
SECRET = "TOKEN-IN-THE-FORBIDDEN-FILE-0451"


@pytest.fixture
def repo(tmp_path):
    """A repository (its own .git) with the example manifests, a secret in .git/config, and a
    file outside the repository that must never be read."""
    root = tmp_path / "repo"
    (root / "manifests").mkdir(parents=True)
    copy_evalscripts(root / "manifests")
    (root / "manifests" / "job.yaml").write_text(EXAMPLE.read_text())
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(f'[http]\n\textraheader = AUTHORIZATION: basic {SECRET}\n')
    (root / ".env").write_text(f"SH_CLIENT_SECRET={SECRET}\n")
    (tmp_path / "outside.js").write_text(f"//VERSION=3\n// {SECRET}\nfunction setup() {{}}\n")
    (tmp_path / "outside.yaml").write_text(f"{SECRET}: 1\nother: {SECRET}\n")
    os.chdir(root)
    return root


def with_evalscript(repo, path: str) -> None:
    text = EXAMPLE.read_text().replace("evalscriptFile: evalscripts/max_ndvi.js", f"evalscriptFile: {path}")
    (repo / "manifests" / "job.yaml").write_text(text)


def outputs(run_cli, *paths: str) -> tuple[int, str]:
    """validate (text and JSON) and plan (text and JSON): every exit code must be 1."""
    runs = [run_cli("validate", *paths), run_cli("validate", "--format", "json", *paths),
            run_cli("plan", *paths), run_cli("plan", "--format", "json", *paths)]
    assert [code for code, _, _ in runs] == [1, 1, 1, 1]
    return 1, "".join(out + err for _, out, err in runs)


@pytest.mark.parametrize("path, rule", [
    ("../../outside.js", "outside the repository"),
    ("{tmp}/outside.js", "outside the repository"),
    ("../.git/config", "under the hidden .git"),
    ("../.env", "under the hidden .env"),
    ("/etc/passwd", "outside the repository"),
])
def test_an_evalscript_outside_the_repository_or_hidden_is_never_read(repo, run_cli, path, rule):
    with_evalscript(repo, path.format(tmp=repo.parent))
    _, text = outputs(run_cli)
    assert SECRET not in text and "root:x:0:0" not in text
    assert f"evalscript file {path.format(tmp=repo.parent)}: not read: it resolves to" in text and rule in text


def test_a_symlinked_evalscript_is_followed_only_inside_the_repository(repo, run_cli):
    scripts = repo / "manifests" / "evalscripts"
    (scripts / "escape.js").symlink_to(repo.parent / "outside.js")
    with_evalscript(repo, "evalscripts/escape.js")
    _, text = outputs(run_cli)
    assert SECRET not in text and "outside the repository" in text
    (scripts / "inside.js").symlink_to(scripts / "max_ndvi.js")  # a link that stays inside is fine
    with_evalscript(repo, "evalscripts/inside.js")
    code, out, _ = run_cli("validate")
    assert code == 0, out


@pytest.mark.parametrize("target", ["outside.yaml", "repo/.git/config", "repo/.env"])
def test_a_symlinked_manifest_leading_out_or_into_hidden_files_is_never_read(repo, run_cli, target):
    (repo / "manifests" / "zz.yaml").symlink_to(repo.parent / target)
    _, text = outputs(run_cli)
    assert SECRET not in text
    assert "manifests/zz.yaml: not read: this link resolves to" in text
    first = next(line for line in text.splitlines() if "zz.yaml" in line)
    assert "hint" not in first  # one line, the hint on its own


def test_a_path_argument_leading_out_of_the_repository_is_refused(repo, run_cli):
    os.symlink(repo.parent, repo / "up")
    for path in (str(repo.parent / "outside.yaml"), "up/outside.yaml", "up"):
        code, out, _ = run_cli("validate", path)
        assert code == 1 and SECRET not in out and "outside the repository" in out


def test_the_repository_is_the_git_top_level_of_the_manifests(repo, run_cli, tmp_path):
    """Run from another folder, the manifests' own repository bounds what they may read."""
    os.chdir(tmp_path)
    assert run_cli("validate", str(repo / "manifests"))[0] == 0
    with_evalscript(repo, "../../outside.js")
    code, out, _ = run_cli("validate", str(repo / "manifests"))
    assert code == 1 and f"outside the repository ({repo})" in out and SECRET not in out


def test_a_fifo_is_not_read_and_does_not_hang(repo, run_cli):
    os.mkfifo(repo / "manifests" / "evalscripts" / "pipe.js")
    with_evalscript(repo, "evalscripts/pipe.js")
    os.mkfifo(repo / "manifests" / "pipe.yaml")
    done: list = []
    worker = threading.Thread(target=lambda: done.append(run_cli("validate", "manifests", "manifests/pipe.yaml")),
                              daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done, "validate hung on a FIFO"
    code, out, _ = done[0]
    assert code == 1
    assert "manifests/pipe.yaml:1:1: the manifest is not a regular file" in out
    assert "evalscript file evalscripts/pipe.js: the evalscript is not a regular file" in out


def test_shard_paths_and_local_lockfiles_stay_inside_the_repository(repo, run_cli):
    for shard, hint in (('paths = ["../"]', "outside the repository"),
                        ('paths = ["manifests/../../"]', "outside the repository"),
                        ('paths = ["/etc"]', "outside the repository"),
                        ('paths = [".git"]', "under the hidden .git")):
        (repo / "reconciler.toml").write_text(f'[shards.a]\n{shard}\nstate = "s3://bucket/a.json"\n')
        code, _, err = run_cli("plan")
        assert code == 1 and hint in err and err.count("\n") <= 2, err
    (repo / "reconciler.toml").write_text('[shards.a]\npaths = ["manifests"]\nstate = "../../home/x/.bashrc"\n')
    code, _, err = run_cli("plan")
    assert code == 1 and "outside the repository" in err


@pytest.mark.parametrize("text, message", [
    ("shards = 5\n", "`shards` must be a table of shards"),
    ("[shards]\na = 5\n", "shards.a must be a table with `paths` and `state`"),
    ('[shards.a]\npaths = "manifests"\nstate = "s3://b/k.json"\n', "shards.a.paths must be a non-empty list"),
])
def test_a_config_of_the_wrong_shape_is_one_line(repo, run_cli, text, message):
    (repo / "reconciler.toml").write_text(text)
    code, _, err = run_cli("plan")
    assert code == 1 and message in err and "unexpected" not in err


def test_the_entry_point_refuses_a_symlinked_manifest_in_one_line(repo):
    (repo / "manifests" / "zz.yaml").symlink_to(repo.parent / "outside.yaml")
    result = subprocess.run([sys.executable, "-m", "reconciler", "validate"], cwd=repo, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 1 and SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
