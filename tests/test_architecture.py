"""The shape of the code (STYLE rules 1, 6, 10; DESIGN §7): the pure engine imports no HTTP, S3
or YAML library (like kopf's layer test), no two packages import each other, a library caller's
interpreter is left as it was found, and modules stay small."""

from __future__ import annotations

import ast
import gc
import subprocess
import sys
from collections import defaultdict

import pytest

from tests.conftest import EXAMPLES, ROOT

PACKAGE = ROOT / "reconciler"
IO_LIBRARIES = ("requests", "urllib3", "oauthlib", "requests_oauthlib", "boto3", "botocore", "ruamel")


def test_the_pure_engine_imports_no_http_s3_or_yaml_library():
    modules = sorted(f"reconciler.engine.{p.stem}" for p in (PACKAGE / "engine").glob("*.py") if p.stem != "__init__")
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
            + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {IO_LIBRARIES!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "reconciler.engine.plan" in modules and result.stdout.strip() == "[]", result.stdout


def _package_imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        source = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("reconciler.") and (target := name.split(".")[1]) != source:
                    edges[source].add(target)
    return edges


def test_no_two_packages_import_each_other():
    edges = _package_imports()
    assert "manifests" in edges["engine"] and "engine" in edges["operations"]
    assert [(a, b) for a in edges for b in edges[a] if a in edges.get(b, ()) and a < b] == []


def test_an_in_process_run_leaves_the_interpreter_as_it_found_it(run_cli, tmp_path):
    import shutil

    from reconciler.manifests.loader import load

    shutil.copytree(EXAMPLES, tmp_path / "manifests")
    before = (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled())
    assert run_cli("validate", "manifests")[0] == 0
    for _ in range(3):
        assert load(["manifests"]).manifests
    assert (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == before


def test_the_console_script_tunes_the_collector_only_for_its_run(monkeypatch, tmp_path):
    from reconciler.cli import console

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["reconciler", "schema"])
    before = (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled())
    with pytest.raises(SystemExit) as exited:
        console()
    assert exited.value.code == 0 and (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == before


def test_no_interpreter_tricks_anywhere():
    """Not in the package, the benchmarks or the scripts (prose may name them)."""
    found = subprocess.run(["git", "grep", "-n", "-E", r"gc\.(freeze|disable)|os\._exit", "--", ".", ":!tests", ":!*.md"],
                           capture_output=True, text=True, cwd=ROOT)
    assert found.stdout == ""


def test_modules_stay_under_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
