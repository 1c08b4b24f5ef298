"""The command line: exit codes, output formats, the error boundary and start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import EXAMPLES, ROOT, copy_evalscripts


def test_validate_examples_text_and_json(run_cli):
    code, out, _ = run_cli("validate", str(EXAMPLES))
    assert code == 0 and out.strip() == "5 manifest(s) in 5 file(s) are valid"
    code, out, _ = run_cli("validate", "--format", "json", str(EXAMPLES))
    report = json.loads(out)
    assert code == 0 and report["valid"] is True and report["formatVersion"] == 1
    assert sorted(report["manifests"]) == sorted(
        ["corsica-max-ndvi", "corsica-max-ndvi-zarr", "corsica-geopackage", "corsica-max-ndvi-v1", "corsica-ndvi-collection"])


def test_validate_missing_path_and_usage_errors_exit_1(run_cli):
    code, out, _ = run_cli("validate", "no/such/dir")
    assert code == 1 and "no/such/dir: no such file or directory" in out
    code, _, err = run_cli("validate", "--format", "yaml")
    assert code == 1 and "Invalid value for '--format'" in err
    code, _, err = run_cli("nonsense")
    assert code == 1 and "No such command" in err


def test_resolve_env_fails_on_unset_variables(tmp_path, run_cli, monkeypatch):
    text = (EXAMPLES / "corsica-max-ndvi.yaml").read_text().replace(
        "iamRoleARN: arn:aws:iam::123456789012:role/sentinel-hub-batch-delivery", "iamRoleARN: ${env:ROLE_ARN}")
    (tmp_path / "job.yaml").write_text(text)
    copy_evalscripts(tmp_path)
    monkeypatch.delenv("ROLE_ARN", raising=False)
    assert run_cli("validate", str(tmp_path))[0] == 0
    code, out, _ = run_cli("validate", "--resolve-env", str(tmp_path))
    assert code == 1 and "environment variable ROLE_ARN is not set" in out
    monkeypatch.setenv("ROLE_ARN", "arn:aws:iam::1:role/x")
    assert run_cli("validate", "--resolve-env", str(tmp_path))[0] == 0


def test_unexpected_errors_become_one_line_and_exit_1(run_cli, monkeypatch):
    import reconciler.manifests.loader as loader

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(loader, "load", broken)
    code, out, err = run_cli("validate")
    assert code == 1 and "unexpected RuntimeError: boom" in err and "Traceback" not in err + out
    assert "--debug" in err
    code, _, err = run_cli("--debug", "validate")
    assert code == 1 and "Traceback" in err and "RuntimeError: boom" in err


def test_help_does_not_import_heavy_libraries():
    """`reconciler --help` must start fast: boto3, deepdiff, pydantic and ruamel load lazily."""
    probe = (
        "import sys; from reconciler.cli import cli; from click.testing import CliRunner;"
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output;"
        "print(sorted(m for m in ('boto3', 'botocore', 'deepdiff', 'pydantic', 'ruamel.yaml', 'requests') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_console_entry_point_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "reconciler", "validate", str(EXAMPLES)], capture_output=True, text=True)
    assert result.returncode == 0 and "are valid" in result.stdout
    result = subprocess.run([sys.executable, "-m", "reconciler", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "reconciler, version" in result.stdout


def test_no_colour_when_not_a_terminal_or_with_no_color(run_cli, monkeypatch):
    code, out, _ = run_cli("validate", "missing")
    assert "\x1b[" not in out
    monkeypatch.setenv("NO_COLOR", "1")
    from reconciler.render import colour_enabled

    class Tty:
        def isatty(self):
            return True

    assert colour_enabled(Tty()) is False
    monkeypatch.delenv("NO_COLOR")
    assert colour_enabled(Tty()) is True


def test_resolve_env_never_prints_a_resolved_value(tmp_path, run_cli, monkeypatch):
    text = (EXAMPLES / "corsica-max-ndvi.yaml").read_text().replace("state: started", "state: ${env:WANTED_STATE}")
    text = text.replace("url: s3://reconciler-demo-results/corsica-max-ndvi", "url: ${env:RESULT_URL}")
    assert "${env:RESULT_URL}" in text
    (tmp_path / "job.yaml").write_text(text)
    copy_evalscripts(tmp_path)
    monkeypatch.setenv("WANTED_STATE", "finished-secret-state")
    monkeypatch.setenv("RESULT_URL", "ftp://secret-host/secret-path")
    for fmt in ("text", "json"):
        code, out, err = run_cli("validate", "--resolve-env", "--format", fmt, str(tmp_path))
        assert code == 1 and "spec.state" in out and "output.delivery.s3.url" in out, out
        assert "secret" not in out + err


def test_debug_works_after_the_command_too(run_cli, monkeypatch):
    import reconciler.manifests.loader as loader

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(loader, "load", boom)
    for args in (("--debug", "validate"), ("validate", "--debug")):
        code, _, err = run_cli(*args)
        assert code == 1 and "Traceback" in err and "unexpected RuntimeError: kaput" in err


def test_validate_of_an_empty_folder_is_an_error(tmp_path, run_cli):
    (tmp_path / "manifests").mkdir()
    code, out, _ = run_cli("validate")
    assert code == 1 and "manifests: no manifest file (*.yaml, *.yml) here" in out and "are valid" not in out


def test_commands_that_load_manifests_show_the_diagnostics_themselves(tmp_path, run_cli, monkeypatch):
    """plan (and apply, status, reconcile, state rebuild) print what is wrong, where, before any API call."""
    (tmp_path / "manifests").mkdir()
    copy_evalscripts(tmp_path / "manifests")
    text = (EXAMPLES / "corsica-max-ndvi.yaml").read_text()
    (tmp_path / "manifests" / "typo.yaml").write_text(text.replace("  state: started", "  state: strated"))
    (tmp_path / "manifests" / "env.yaml").write_text(text.replace("name: corsica-max-ndvi", "name: other").replace(
        "description: Max NDVI over Corsica", "description: ${env:NOT_SET_ANYWHERE}"))
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    for key, value in {"SH_CLIENT_ID": "id", "SH_CLIENT_SECRET": "secret", "SH_BASE_URL": "http://127.0.0.1:9",
                       "SH_TOKEN_URL": "http://127.0.0.1:9/token"}.items():  # never reached: nothing is sent
        monkeypatch.setenv(key, value)
    for command in (("plan",), ("apply", "--auto-approve"), ("status",), ("reconcile",), ("state", "rebuild")):
        code, out, err = run_cli(*command, "--state", str(tmp_path / "state.json"))
        assert code == 1, command
        assert "manifests/typo.yaml:12:10: spec.state: expected 'created', 'analysed', 'started' or 'stopped'" in err
        if command == ("status",):  # status reads live state: it leaves ${env:…} unresolved, so an unset one is fine
            assert "manifests/env.yaml:" not in err and "1 error(s) in the manifests" in err
            continue
        assert "manifests/env.yaml:" in err and "environment variable NOT_SET_ANYWHERE is not set" in err
        assert "2 error(s) in the manifests" in err
    code, _, err = run_cli("plan", "nosuchdir", "--state", str(tmp_path / "state.json"))
    assert code == 1 and "nosuchdir: no such file or directory" in err
