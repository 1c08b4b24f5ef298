"""The distribution as a user builds it: `pip install .` of a fresh copy of the project into a fresh
virtual environment, with build isolation (the build backend comes from the package index, as
pyproject.toml asks), prints no deprecation warning, and the installed metadata declares the
license as an SPDX expression with its file (PEP 639)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def fresh_clone(target: Path) -> Path:
    """What a clone of the work tree would hold: tracked files and new ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not in a clone of it either
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_pip_install_prints_no_deprecation_and_declares_the_license(tmp_path):
    project = fresh_clone(tmp_path / "project")
    venv = tmp_path / "venv"
    # Without a pip of its own (seeding one costs three seconds of CPU): this interpreter's pip
    # installs into it (--python), with the same build isolation.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # -v shows the build backend's own output, where setuptools prints its deprecations; --no-deps:
    # the dependencies are other projects (and a hundred megabytes) and say nothing about this one.
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-v", "--no-deps",
                             "--disable-pip-version-check", str(project)], capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "deprecat" not in output.lower(), [line for line in output.splitlines() if "deprecat" in line.lower()]
    probe = ("import importlib.metadata as m, json; d = m.distribution('sh-batch-reconciler'); "
             "print(json.dumps([d.metadata['License-Expression'], d.metadata.get_all('License-File'), "
             "d.metadata['License'], d.read_text('licenses/LICENSE')]))")
    shown = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    expression, files, old_field, text = json.loads(shown)
    assert (expression, files, old_field) == ("Apache-2.0", ["LICENSE"], None)
    assert text == (ROOT / "LICENSE").read_text()


def test_the_license_is_the_whole_apache_2_0_text():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    for heading in ("1. Definitions.", "4. Redistribution.", "9. Accepting Warranty or Additional Liability.",
                    "END OF TERMS AND CONDITIONS", "APPENDIX: How to apply the Apache License to your work."):
        assert heading in text
    # the SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt
    assert hashlib.sha256(text.encode()).hexdigest() == "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
