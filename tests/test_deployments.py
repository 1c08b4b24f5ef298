"""Named Sentinel Hub deployments (`--deployment` / SH_DEPLOYMENT): their URLs against
sentinelhub-py's own constants, the SH_BASE_URL/SH_TOKEN_URL pairs they stand for, the refusals
when a name and URLs disagree, and a command reaching the chosen deployment's hosts (HTTP faked
with `responses`: the real hosts are not reachable from tests)."""

from __future__ import annotations

import pytest
import responses
from sentinelhub import SHConfig
from sentinelhub.constants import ServiceUrl

from reconciler.settings import DEPLOYMENTS, InvalidSettings, api_settings

CREDENTIALS = {"SH_CLIENT_ID": "id", "SH_CLIENT_SECRET": "secret-of-the-client"}
CDSE_TOKEN = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"


def test_the_eu_and_us_west_deployments_are_sentinelhub_py_s_own():
    config = SHConfig(use_defaults=True)
    assert (DEPLOYMENTS["eu"].base_url, DEPLOYMENTS["eu"].token_url) == (config.sh_base_url, config.sh_token_url)
    assert (DEPLOYMENTS["us-west"].base_url, DEPLOYMENTS["us-west"].token_url) == (ServiceUrl.USWEST,
                                                                                    config.sh_token_url)
    assert api_settings(CREDENTIALS).base_url == config.sh_base_url  # no deployment named: EU


def test_cdse_has_its_own_api_host_and_token_realm():
    settings = api_settings(CREDENTIALS, deployment="cdse")
    assert (settings.base_url, settings.token_url) == ("https://sh.dataspace.copernicus.eu", CDSE_TOKEN)
    assert api_settings({**CREDENTIALS, "SH_DEPLOYMENT": "cdse"}).token_url == CDSE_TOKEN


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_a_deployment_is_the_same_as_its_documented_url_pair(name):
    chosen = DEPLOYMENTS[name]
    by_name = api_settings({**CREDENTIALS, "SH_DEPLOYMENT": name})
    by_urls = api_settings({**CREDENTIALS, "SH_BASE_URL": chosen.base_url + "/", "SH_TOKEN_URL": chosen.token_url})
    both = api_settings({**CREDENTIALS, "SH_BASE_URL": chosen.base_url, "SH_TOKEN_URL": chosen.token_url},
                        deployment=name)
    assert (by_name.base_url, by_name.token_url) == (by_urls.base_url, by_urls.token_url) == \
        (both.base_url, both.token_url) == (chosen.base_url, chosen.token_url)


def test_a_known_base_url_alone_brings_its_own_token_realm():
    cdse = api_settings({**CREDENTIALS, "SH_BASE_URL": "https://sh.dataspace.copernicus.eu"})
    assert cdse.token_url == CDSE_TOKEN
    assert api_settings({**CREDENTIALS, "SH_BASE_URL": ServiceUrl.USWEST}).token_url == DEPLOYMENTS["eu"].token_url
    other = api_settings({**CREDENTIALS, "SH_BASE_URL": "https://sh.example.org", "SH_TOKEN_URL": "https://id.example.org/t"})
    assert (other.base_url, other.token_url) == ("https://sh.example.org", "https://id.example.org/t")


def test_a_deployment_and_urls_of_another_service_are_refused():
    with pytest.raises(InvalidSettings) as refused:
        api_settings({**CREDENTIALS, "SH_DEPLOYMENT": "cdse", "SH_BASE_URL": "https://services.sentinel-hub.com"})
    assert "SH_BASE_URL (https://services.sentinel-hub.com) is not the base URL of deployment 'cdse'" in str(refused.value)
    assert "not both" in refused.value.hint
    with pytest.raises(InvalidSettings, match="SH_TOKEN_URL .* is not the token URL of deployment 'eu'"):
        api_settings({**CREDENTIALS, "SH_TOKEN_URL": CDSE_TOKEN}, deployment="eu")


def test_an_unknown_deployment_names_the_choices():
    with pytest.raises(InvalidSettings) as refused:
        api_settings({**CREDENTIALS, "SH_DEPLOYMENT": "copernicus"})
    assert "unknown deployment 'copernicus'" in str(refused.value)
    assert "eu, us-west, cdse" in refused.value.hint


GRID = {"id": 0, "name": "20km grid", "properties": {"tileWidth": 20040, "tileHeight": 20040,
                                                     "resolutions": [10, 20, 60], "unit": "METRE"}}


@responses.activate
@pytest.mark.parametrize("args", [("--deployment", "cdse", "grids"), ("grids", "--deployment", "cdse"),
                                  ("grids", "--deployment=cdse")])
def test_the_flag_sends_every_call_to_the_chosen_deployment(args, run_cli, monkeypatch):
    for variable in ("SH_DEPLOYMENT", "SH_BASE_URL", "SH_TOKEN_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SH_CLIENT_ID", "id")
    monkeypatch.setenv("SH_CLIENT_SECRET", "secret-of-the-client")
    responses.post(CDSE_TOKEN, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
    responses.get("https://sh.dataspace.copernicus.eu/api/v2/batch/tilinggrids", json={"data": [GRID], "links": {}})
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert "20km grid" in out
    assert [call.request.url.split("?")[0] for call in responses.calls] == [
        CDSE_TOKEN, "https://sh.dataspace.copernicus.eu/api/v2/batch/tilinggrids"]


@responses.activate
def test_sh_deployment_reaches_us_west_with_the_main_realm_s_token(run_cli, monkeypatch):
    for variable in ("SH_BASE_URL", "SH_TOKEN_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SH_DEPLOYMENT", "us-west")
    monkeypatch.setenv("SH_CLIENT_ID", "id")
    monkeypatch.setenv("SH_CLIENT_SECRET", "secret-of-the-client")
    responses.post(DEPLOYMENTS["eu"].token_url, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
    responses.get(f"{ServiceUrl.USWEST}/api/v2/batch/tilinggrids", json={"data": [GRID], "links": {}})
    code, out, err = run_cli("grids", "--format", "json")
    assert code == 0, err
    assert [call.request.url.split("?")[0] for call in responses.calls] == [
        DEPLOYMENTS["eu"].token_url, f"{ServiceUrl.USWEST}/api/v2/batch/tilinggrids"]


@responses.activate
def test_a_refused_token_names_the_deployment_s_realm(run_cli, monkeypatch):
    for variable in ("SH_BASE_URL", "SH_TOKEN_URL", "SH_DEPLOYMENT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SH_CLIENT_ID", "id")
    monkeypatch.setenv("SH_CLIENT_SECRET", "secret-of-the-client")
    responses.post(CDSE_TOKEN, status=401, json={"error": "invalid_client"})
    code, out, err = run_cli("grids", "--deployment", "cdse")
    assert code == 1
    assert "POST /auth/realms/CDSE/protocol/openid-connect/token" in err and "--deployment" in err
    assert "secret-of-the-client" not in out + err
