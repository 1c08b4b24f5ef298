"""The global options (`--deployment`, `--debug`): taken before or after any command, nested ones
too, and listed under "Global options" in every command's help."""

from __future__ import annotations

import click
import pytest
import responses

from reconciler.cli import cli
from reconciler.settings import DEPLOYMENTS

GRID = {"id": 0, "name": "20km grid", "properties": {"tileWidth": 20040, "tileHeight": 20040,
                                                     "resolutions": [10, 20, 60], "unit": "METRE"}}


def every_command(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The command lines of the group, its groups and all their commands."""
    found = [prefix]
    for name, command in group.commands.items():
        found += every_command(command, (*prefix, name)) if isinstance(command, click.Group) else [(*prefix, name)]
    return found


@pytest.mark.parametrize("words", every_command(), ids=lambda words: " ".join(words) or "reconciler")
def test_every_help_lists_the_global_options(words, run_cli):
    code, out, err = run_cli(*words, "--help")
    assert code == 0, err
    section = out.split("\nGlobal options:\n", 1)[1].split("\n\n", 1)[0]
    assert "--deployment [eu|us-west|cdse]" in section and "--debug" in section
    own = out.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0]
    assert "--deployment" not in own and "--help" in own


def test_the_commands_table_is_unchanged_by_them():
    """They are added like --help (by get_params), so a command's own options stay its own."""
    assert not [p for p in cli.commands["plan"].params if p.name in ("deployment", "debug")]


def calls(args: tuple[str, ...], run_cli, monkeypatch, environ: dict[str, str]) -> list[str]:
    """The URLs `reconciler ARGS…` (a grids listing) reached, the service faked with `responses`."""
    for variable in ("SH_DEPLOYMENT", "SH_BASE_URL", "SH_TOKEN_URL", "SH_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    for key, value in {"SH_CLIENT_ID": "id", "SH_CLIENT_SECRET": "secret-of-the-client", **environ}.items():
        monkeypatch.setenv(key, value)
    with responses.RequestsMock() as mocked:
        for deployment in {d.token_url: d for d in DEPLOYMENTS.values()}.values():
            mocked.post(deployment.token_url, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
        for deployment in DEPLOYMENTS.values():
            mocked.get(f"{deployment.base_url}/api/v2/batch/tilinggrids", json={"data": [GRID], "links": {}})
        mocked.assert_all_requests_are_fired = False
        code, out, err = run_cli(*args)
        assert code == 0, out + err
        return [call.request.url.split("?")[0] for call in mocked.calls]


CDSE = DEPLOYMENTS["cdse"]
CDSE_CALLS = [CDSE.token_url, f"{CDSE.base_url}/api/v2/batch/tilinggrids"]


@pytest.mark.parametrize("args", [("--deployment", "cdse", "grids"), ("grids", "--deployment", "cdse"),
                                  ("grids", "--deployment=cdse"), ("--deployment", "eu", "grids", "--deployment", "cdse")])
def test_both_positions_work_and_the_later_wins(args, run_cli, monkeypatch):
    assert calls(args, run_cli, monkeypatch, {}) == CDSE_CALLS


def test_the_flag_beats_the_variable(run_cli, monkeypatch):
    assert calls(("grids", "--deployment", "cdse"), run_cli, monkeypatch, {"SH_DEPLOYMENT": "us-west"}) == CDSE_CALLS
    us_west = DEPLOYMENTS["us-west"]
    assert calls(("grids",), run_cli, monkeypatch, {"SH_DEPLOYMENT": "us-west"}) == [
        us_west.token_url, f"{us_west.base_url}/api/v2/batch/tilinggrids"]


def test_a_nested_command_takes_them_and_checks_the_choice(run_cli, tmp_path):
    state = str(tmp_path / "state.json")
    code, out, err = run_cli("state", "list", "--state", state, "--deployment", "cdse", "--debug")
    assert code == 0, out + err
    code, out, err = run_cli("state", "--debug", "list", "--state", state)
    assert code == 0, out + err
    code, _, err = run_cli("plan", "--deployment", "mars")
    assert code == 1 and "Invalid value for '--deployment'" in err


def test_debug_after_the_double_dash_is_an_argument(run_cli, monkeypatch):
    import reconciler.manifests.loader as loader

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(loader, "load", broken)
    monkeypatch.delenv("RECONCILER_DEBUG", raising=False)
    code, _, err = run_cli("validate", "--", "--debug")
    assert code == 1 and "unexpected RuntimeError: boom" in err and "Traceback" not in err
    code, _, err = run_cli("validate", "--debug", "--", "x")
    assert code == 1 and "Traceback" in err
