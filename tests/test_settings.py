"""API settings from the environment: defaults, overrides, normalisation, and a secret that never shows."""

from __future__ import annotations

import pytest

from reconciler.errors import ReconcilerError
from reconciler.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_TOKEN_URL,
    ApiSettings,
    InvalidSettings,
    MissingCredentials,
    api_settings,
)

CREDENTIALS = {"SH_CLIENT_ID": "my-client", "SH_CLIENT_SECRET": "very-secret-value"}


def test_defaults_from_credentials_only():
    s = api_settings(CREDENTIALS)
    assert (s.client_id, s.client_secret) == ("my-client", "very-secret-value")
    assert s.base_url == DEFAULT_BASE_URL == "https://services.sentinel-hub.com"
    assert s.token_url == DEFAULT_TOKEN_URL
    assert s.timeout == (10.0, 60.0)
    assert (s.max_attempts, s.rate_limit_budget) == (5, 120.0)


def test_urls_from_environment_with_trailing_slashes_normalised():
    env = {**CREDENTIALS, "SH_BASE_URL": "https://sh.dataspace.copernicus.eu//",
           "SH_TOKEN_URL": " https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token/ "}
    s = api_settings(env)
    assert s.base_url == "https://sh.dataspace.copernicus.eu"
    assert s.token_url == "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"


def test_empty_url_variables_fall_back_to_defaults():
    s = api_settings({**CREDENTIALS, "SH_BASE_URL": "", "SH_TOKEN_URL": "  "})
    assert (s.base_url, s.token_url) == (DEFAULT_BASE_URL, DEFAULT_TOKEN_URL)


def test_overrides_win_and_none_overrides_are_ignored():
    s = api_settings(CREDENTIALS, base_url="https://services-uswest2.sentinel-hub.com/", read_timeout=5, token_url=None)
    assert s.base_url == "https://services-uswest2.sentinel-hub.com"
    assert s.read_timeout == 5 and s.token_url == DEFAULT_TOKEN_URL
    with pytest.raises(TypeError, match="unknown API setting"):
        api_settings(CREDENTIALS, base_uri="https://x")


@pytest.mark.parametrize(
    "env, missing",
    [({}, "SH_CLIENT_ID and SH_CLIENT_SECRET are not set"),
     ({"SH_CLIENT_ID": "id"}, "SH_CLIENT_SECRET is not set"),
     ({"SH_CLIENT_SECRET": "s", "SH_CLIENT_ID": "  "}, "SH_CLIENT_ID is not set")],
)
def test_missing_credentials_name_the_variables(env, missing):
    with pytest.raises(MissingCredentials) as info:
        api_settings(env)
    assert isinstance(info.value, ReconcilerError) and info.value.exit_code == 1
    assert missing in info.value.message
    assert "SH_CLIENT_ID" in info.value.hint and "SH_CLIENT_SECRET" in info.value.hint


def test_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("SH_CLIENT_ID", "env-id")
    monkeypatch.setenv("SH_CLIENT_SECRET", "env-secret")
    monkeypatch.delenv("SH_BASE_URL", raising=False)
    assert api_settings().client_id == "env-id"


def test_secret_absent_from_repr_and_str():
    s = api_settings(CREDENTIALS)
    for text in (repr(s), str(s), f"{s}", f"{s!r}"):
        assert "very-secret-value" not in text
        assert "my-client" in text  # the id is not secret and helps to tell accounts apart


def test_settings_are_frozen():
    s = api_settings(CREDENTIALS)
    with pytest.raises(AttributeError):
        s.client_secret = "other"  # type: ignore[misc]


@pytest.mark.parametrize("url", ["services.sentinel-hub.com", "ftp://host/x", "https://", "not a url"])
def test_malformed_urls_are_refused(url):
    with pytest.raises(InvalidSettings, match="SH_BASE_URL"):
        api_settings({**CREDENTIALS, "SH_BASE_URL": url})


def test_plain_http_only_on_loopback_unless_opted_in():
    for host in ("http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:5000"):
        env = {**CREDENTIALS, "SH_BASE_URL": host, "SH_TOKEN_URL": host + "/oauth/token"}
        assert api_settings(env).base_url == host
    with pytest.raises(InvalidSettings, match="plain http") as info:
        api_settings({**CREDENTIALS, "SH_BASE_URL": "http://sandbox.internal:8080"})
    assert "OAUTHLIB_INSECURE_TRANSPORT" in info.value.hint
    opted_in = {**CREDENTIALS, "SH_BASE_URL": "http://sandbox.internal:8080", "OAUTHLIB_INSECURE_TRANSPORT": "1"}
    assert api_settings(opted_in).base_url == "http://sandbox.internal:8080"


@pytest.mark.parametrize("field, value", [("read_timeout", 0), ("backoff_base", -1), ("max_attempts", 0),
                                          ("rate_limit_attempts", 0)])
def test_nonsense_budgets_are_refused(field, value):
    with pytest.raises(InvalidSettings, match=field):
        ApiSettings("id", "secret", **{field: value})


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On", "True\n"])
def test_plain_http_opt_in_takes_only_yes_words(value):
    env = {**CREDENTIALS, "SH_BASE_URL": "http://sandbox.internal:8080", "OAUTHLIB_INSECURE_TRANSPORT": value}
    assert api_settings(env).base_url == "http://sandbox.internal:8080"


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "off", "", "  ", "2", "enabled", "y"])
def test_plain_http_is_refused_when_the_opt_in_says_no_or_anything_else(value):
    for variable in ("SH_BASE_URL", "SH_TOKEN_URL"):
        env = {**CREDENTIALS, variable: "http://sandbox.internal:8080/x", "OAUTHLIB_INSECURE_TRANSPORT": value}
        with pytest.raises(InvalidSettings, match=f"{variable} uses plain http on a non-local host"):
            api_settings(env)
