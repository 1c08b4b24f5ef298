"""The pre-commit hooks (.pre-commit-hooks.yaml), run by pre-commit itself in a throw-away repository
of manifests that uses them as the hooks file says (a `.pre-commit-config.yaml` naming this project
at a commit): validate and fmt --check pass on good manifests and fail, saying where, on bad ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import EXAMPLES, ROOT


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def project_as_committed(tmp_path):
    """This working tree's project files in a repository of their own, committed: pre-commit installs
    the hooks from a commit, and the tree under test may not be one yet."""
    project = tmp_path / "project"
    project.mkdir()
    for name in (".pre-commit-hooks.yaml", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "reconciler", project / "reconciler", ignore=shutil.ignore_patterns("__pycache__"))
    git(project.parent, "init", "-q", str(project))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "project")
    return project


def test_the_hooks_pass_good_manifests_and_stop_bad_ones(tmp_path):
    project = project_as_committed(tmp_path)
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "manifests")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {project}\n    rev: {git(project, 'rev-parse', 'HEAD')}\n"
        "    hooks:\n      - id: reconciler-validate\n      - id: reconciler-fmt\n")
    git(repo.parent, "init", "-q", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "manifests")
    # pre-commit installs the hooks' package from the commit into an environment of its own (once:
    # the runs after the first reuse it); its dependencies are the ones this suite runs on (installed
    # by `make test` from the same pyproject.toml), lent through PYTHONPATH rather than downloaded
    # and built again.
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"), "NO_COLOR": "1", "PIP_NO_DEPS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p.endswith("site-packages"))}

    def hook(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", name, "--all-files"],
                              cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    for name in ("reconciler-validate", "reconciler-fmt"):
        result = hook(name)
        assert result.returncode == 0, result.stdout + result.stderr
    target = repo / "manifests" / "corsica-max-ndvi.yaml"
    target.write_text(target.read_text().replace("  state: started", "  state: strated").replace(
        "  api: v2\n", "  api:   v2\n"))
    validate, fmt = hook("reconciler-validate"), hook("reconciler-fmt")
    assert validate.returncode == 1 and "manifests/corsica-max-ndvi.yaml:" in validate.stdout
    assert "spec.state: expected 'created', 'analysed', 'started' or 'stopped'" in validate.stdout
    assert fmt.returncode == 1 and "manifests/corsica-max-ndvi.yaml" in fmt.stdout
