"""`reconciler completion bash|zsh|fish`: click's completion scripts for the console script, and the
console script answering a completion request (the call those scripts make)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONSOLE_SCRIPT = Path(sys.executable).parent / "reconciler"  # installed with the package (pyproject.toml)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_that_calls_the_console_script_back(shell, run_cli):
    code, out, err = run_cli("completion", shell)
    assert code == 0, err
    assert "_RECONCILER_COMPLETE" in out and "reconciler" in out
    assert f"{shell}_complete" in out  # the instruction click answers for this shell


def test_an_unknown_shell_is_a_usage_error(run_cli):
    code, _, err = run_cli("completion", "powershell")
    assert code == 1 and "Invalid value for '{bash|zsh|fish}'" in err


def complete(words: str, cword: int) -> list[str]:
    """What the installed console script answers to bash's completion request."""
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_RECONCILER_COMPLETE": "bash_complete"}
    result = subprocess.run([str(CONSOLE_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_console_script_completes_commands_options_and_choices():
    assert CONSOLE_SCRIPT.exists(), f"the console script is not installed beside {sys.executable}"
    assert complete("reconciler pl", 1) == ["plain,plan"]
    assert "plain,--deployment" in complete("reconciler plan --de", 2)  # a global option, after the command
    assert complete("reconciler plan --deployment ", 3) == ["plain,eu", "plain,us-west", "plain,cdse"]
    assert complete("reconciler state r", 2) == ["plain,rebuild", "plain,rm"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_with_the_printed_script():
    script = ('eval "$(reconciler completion bash)"; COMP_WORDS=(reconciler pl); COMP_CWORD=1; '
              '_reconciler_completion reconciler; printf "%s\\n" "${COMPREPLY[@]}"')
    env = {**os.environ, "PATH": f"{CONSOLE_SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plan"]
