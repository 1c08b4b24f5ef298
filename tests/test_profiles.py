"""sentinelhub-py's configuration is honoured (DESIGN §5): the profile SH_PROFILE names (else
`default-profile`) of its config.toml, below flags and SH_* variables, field by field; read strictly;
and a command that has nothing but the profile reaches the profile's service (the sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from sentinelhub import SHConfig

from reconciler.profiles import DEFAULT_PROFILE, InvalidProfile, config_path, read_profile
from reconciler.sandbox.app import TOKEN_PATH
from reconciler.settings import DEPLOYMENTS, InvalidSettings, MissingCredentials, api_settings

CDSE = DEPLOYMENTS["cdse"]
SH_VARIABLES = ("SH_CLIENT_ID", "SH_CLIENT_SECRET", "SH_BASE_URL", "SH_TOKEN_URL", "SH_DEPLOYMENT", "SH_PROFILE")


def write_config(home: Path, text: str) -> Path:
    """`text` as sentinelhub-py's config.toml under the config folder `home` (XDG_CONFIG_HOME)."""
    path = home / "sentinelhub" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def profile_text(name: str, **keys: str) -> str:
    return f"[{name}]\n" + "".join(f'{key} = "{value}"\n' for key, value in keys.items())


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "config"


def test_the_file_is_where_sentinelhub_py_looks(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert config_path({"HOME": str(tmp_path / "home")}) == Path(SHConfig.get_config_location())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "elsewhere")}) == \
        Path(SHConfig.get_config_location())
    # An empty XDG_CONFIG_HOME counts as unset (the XDG rule; sentinelhub-py would look in ./sentinelhub/)
    other = tmp_path / "other-home"
    assert config_path({"XDG_CONFIG_HOME": "", "HOME": str(other)}) == other / ".config" / "sentinelhub" / "config.toml"
    assert config_path({}) is None  # a mapping of its own names no file: such tests stay hermetic


def test_a_profile_gives_credentials_and_urls(home):
    write_config(home, profile_text(DEFAULT_PROFILE, sh_client_id="id-p", sh_client_secret="secret-p",
                                    sh_base_url=CDSE.base_url + "/", sh_token_url=CDSE.token_url))
    settings = api_settings({"XDG_CONFIG_HOME": str(home)})
    assert (settings.client_id, settings.client_secret) == ("id-p", "secret-p")
    assert (settings.base_url, settings.token_url) == (CDSE.base_url, CDSE.token_url)


def test_sentinelhub_py_reads_the_same_profile(home, monkeypatch):
    write_config(home, profile_text("mine", sh_client_id="id-p", sh_client_secret="secret-p",
                                    sh_base_url=CDSE.base_url, sh_token_url=CDSE.token_url))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("SH_PROFILE", "mine")
    for variable in ("SH_CLIENT_ID", "SH_CLIENT_SECRET", "SH_BASE_URL", "SH_TOKEN_URL", "SH_DEPLOYMENT"):
        monkeypatch.delenv(variable, raising=False)
    config, settings = SHConfig(), api_settings()
    assert (settings.client_id, settings.client_secret, settings.base_url, settings.token_url) == \
        (config.sh_client_id, config.sh_client_secret, config.sh_base_url, config.sh_token_url)


def test_a_variable_overrides_only_its_own_field(home):
    write_config(home, profile_text("mine", sh_client_id="id-p", sh_client_secret="secret-p",
                                    sh_base_url=CDSE.base_url, sh_token_url=CDSE.token_url))
    env = {"XDG_CONFIG_HOME": str(home), "SH_PROFILE": "mine"}
    settings = api_settings({**env, "SH_CLIENT_SECRET": "secret-v"})
    assert (settings.client_id, settings.client_secret, settings.base_url) == ("id-p", "secret-v", CDSE.base_url)
    settings = api_settings({**env, "SH_BASE_URL": "https://sh.example.org"})
    assert (settings.base_url, settings.token_url) == ("https://sh.example.org", CDSE.token_url)


def test_a_profile_s_base_url_alone_brings_its_deployment_s_realm(home):
    write_config(home, profile_text(DEFAULT_PROFILE, sh_client_id="i", sh_client_secret="s", sh_base_url=CDSE.base_url))
    assert api_settings({"XDG_CONFIG_HOME": str(home)}).token_url == CDSE.token_url


def test_a_deployment_outranks_the_profile_and_the_flag_outranks_the_variable(home):
    write_config(home, profile_text(DEFAULT_PROFILE, sh_client_id="i", sh_client_secret="s",
                                    sh_base_url=CDSE.base_url, sh_token_url=CDSE.token_url))
    env = {"XDG_CONFIG_HOME": str(home)}
    us_west = api_settings({**env, "SH_DEPLOYMENT": "us-west"})
    assert (us_west.base_url, us_west.token_url) == (DEPLOYMENTS["us-west"].base_url, DEPLOYMENTS["us-west"].token_url)
    eu = api_settings({**env, "SH_DEPLOYMENT": "us-west"}, deployment="eu")
    assert (eu.base_url, eu.token_url) == (DEPLOYMENTS["eu"].base_url, DEPLOYMENTS["eu"].token_url)
    assert api_settings(env, client_id="flag-id").client_id == "flag-id"  # an explicit value beats them all


def test_keys_that_are_not_ours_are_ignored_and_empty_values_are_unset(home):
    write_config(home, profile_text(DEFAULT_PROFILE, sh_client_id="i", sh_client_secret="s", sh_base_url=" ",
                                    instance_id="x", sh_unknown_key="y") + "max_download_attempts = 4\n")
    assert api_settings({"XDG_CONFIG_HOME": str(home)}).base_url == DEPLOYMENTS["eu"].base_url


def test_a_missing_file_or_default_profile_gives_nothing(home):
    assert read_profile({"XDG_CONFIG_HOME": str(home)}).values == {}
    write_config(home, profile_text("other", sh_client_id="i"))
    assert read_profile({"XDG_CONFIG_HOME": str(home)}).values == {}


def test_a_named_profile_that_is_missing_is_an_error_naming_file_and_profile(home):
    path = write_config(home, profile_text("other", sh_client_id="i") + profile_text("third"))
    with pytest.raises(InvalidProfile) as info:
        api_settings({"XDG_CONFIG_HOME": str(home), "SH_PROFILE": "mine", "SH_CLIENT_ID": "i", "SH_CLIENT_SECRET": "s"})
    assert info.value.message == f"SH_PROFILE=mine: {path} has no profile 'mine'"
    assert "other, third" in info.value.hint and "add a [mine] table" in info.value.hint
    (home / "sentinelhub" / "config.toml").unlink()
    with pytest.raises(InvalidProfile, match=f"SH_PROFILE=mine: {path} has no profile 'mine'"):
        read_profile({"XDG_CONFIG_HOME": str(home), "SH_PROFILE": "mine"})
    with pytest.raises(InvalidProfile, match="neither XDG_CONFIG_HOME nor HOME is set"):
        read_profile({"SH_PROFILE": "mine"})


@pytest.mark.parametrize("text, said", [
    ('[default-profile]\nsh_client_id = "unterminated\n', "Illegal character"),
    ("[default-profile]\nsh_client_id = 'a'\n[default-profile]\n", "Cannot declare"),
    ('default-profile = "a string"\n', "a profile must be a table of settings"),
    ("[default-profile]\nsh_client_secret = 12345\n", "sh_client_secret must be a string"),
])
def test_a_broken_file_is_one_line_naming_file_and_profile(home, text, said):
    path = write_config(home, text)
    with pytest.raises(InvalidProfile) as info:
        api_settings({"XDG_CONFIG_HOME": str(home), "SH_CLIENT_ID": "i", "SH_CLIENT_SECRET": "s"})
    message = info.value.message
    assert message.startswith(f"{path}, profile 'default-profile': ") and said in message and "\n" not in message
    assert "12345" not in message  # a value is never quoted: it may be the secret


def test_an_unreadable_file_is_named(home):
    path = write_config(home, "")
    path.write_bytes(b"\xff\xfe[x]")
    with pytest.raises(InvalidProfile, match=f"{path}, profile 'default-profile': not a readable"):
        read_profile({"XDG_CONFIG_HOME": str(home)})


def test_missing_credentials_name_the_variables_the_profile_and_how_to_set_them(home):
    path = write_config(home, profile_text("mine", sh_base_url=CDSE.base_url))
    with pytest.raises(MissingCredentials) as info:
        api_settings({"XDG_CONFIG_HOME": str(home), "SH_PROFILE": "mine"})
    assert info.value.message == ("no Sentinel Hub credentials: SH_CLIENT_ID and SH_CLIENT_SECRET are not set, and "
                                  f"profile 'mine' of {path} has no sh_client_id or sh_client_secret")
    hint = info.value.hint
    assert "SH_CLIENT_ID and SH_CLIENT_SECRET" in hint and "sh_client_id and sh_client_secret" in hint
    assert "`sentinelhub.config --profile mine --sh_client_id ID" in hint and "SH_PROFILE" in hint
    assert "sandbox serve --env-file" in hint
    with pytest.raises(MissingCredentials, match=f"SH_CLIENT_SECRET is not set, and {path} has no profile 'default-profile'"):
        api_settings({"XDG_CONFIG_HOME": str(home), "SH_CLIENT_ID": "i"})
    with pytest.raises(MissingCredentials, match="no sentinelhub-py config.toml can be named"):
        api_settings({"SH_CLIENT_ID": "i"})


def test_a_profile_s_urls_follow_the_transport_rule(home):
    write_config(home, profile_text(DEFAULT_PROFILE, sh_client_id="i", sh_client_secret="s",
                                    sh_base_url="http://sh.internal:8080", sh_token_url="http://127.0.0.1:9/token"))
    with pytest.raises(InvalidSettings) as info:
        api_settings({"XDG_CONFIG_HOME": str(home)})
    assert info.value.message.startswith("sh_base_url of profile 'default-profile' in ")
    assert "uses plain http on a non-local host: http://sh.internal:8080" in info.value.message
    opted_in = api_settings({"XDG_CONFIG_HOME": str(home), "OAUTHLIB_INSECURE_TRANSPORT": "1"})
    assert opted_in.base_url == "http://sh.internal:8080"
    write_config(home, profile_text(DEFAULT_PROFILE, sh_client_id="i", sh_client_secret="s", sh_base_url="sh.internal"))
    with pytest.raises(InvalidSettings, match="sh_base_url of profile 'default-profile' .* is not an http"):
        api_settings({"XDG_CONFIG_HOME": str(home)})


def test_the_secret_never_shows_in_a_profile_s_repr(home):
    write_config(home, profile_text(DEFAULT_PROFILE, sh_client_secret="very-secret-value"))
    assert "very-secret-value" not in repr(read_profile({"XDG_CONFIG_HOME": str(home)}))


def token_requests(sandbox) -> int:
    stats = requests.get(sandbox.env["SH_BASE_URL"] + "/sandbox/stats", timeout=10).json()["requests"]
    return stats.get(f"POST {TOKEN_PATH}", 0)


def test_plan_and_show_work_with_nothing_but_a_profile(workspace, sandbox, run_cli, monkeypatch, tmp_path):
    """Only SH_PROFILE of the SH_* variables is set (the state and S3 settings stay): `plan` reaches the
    sandbox the profile points at, and its saved plan is signed with the profile's secret."""
    write_config(tmp_path / "config", profile_text(
        "sandbox-profile", sh_client_id=sandbox.env["SH_CLIENT_ID"], sh_client_secret=sandbox.env["SH_CLIENT_SECRET"],
        sh_base_url=sandbox.env["SH_BASE_URL"], sh_token_url=sandbox.env["SH_TOKEN_URL"]))
    for variable in (*SH_VARIABLES, "OAUTHLIB_INSECURE_TRANSPORT", "RECONCILER_PLAN_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("SH_PROFILE", "sandbox-profile")
    before = token_requests(sandbox)
    code, out, err = run_cli("plan", "--out", "saved.plan", "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["formatVersion"] and token_requests(sandbox) > before
    code, out, err = run_cli("show", "saved.plan")  # the plan key: derived from the profile's secret
    assert code == 0, out + err
    monkeypatch.setenv("SH_PROFILE", "no-such-profile")
    code, out, err = run_cli("plan")
    assert code == 1 and "has no profile 'no-such-profile'" in out + err
