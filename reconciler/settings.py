"""Configuration: flags, the environment and sentinelhub-py's profile → frozen settings (README, "Configuration").

The first step of every command that talks to a service. Settings are read once, checked here
(so a typo in a URL fails before any request), and passed down as immutable values; nothing
below this module reads the environment for its configuration.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from reconciler.errors import ReconcilerError
from reconciler.profiles import DEFAULT_PROFILE, PROFILE_KEYS, Profile, read_profile


@dataclass(frozen=True)
class Deployment:
    """A Sentinel Hub deployment: where its API is and which realm issues its tokens."""

    base_url: str
    token_url: str


_MAIN_REALM = "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token"
# `--deployment` / SH_DEPLOYMENT. The EU and US West URLs are sentinelhub-py's own (SHConfig's
# defaults, ServiceUrl.USWEST: one realm serves both); CDSE has its own API host and realm.
DEPLOYMENTS = {
    "eu": Deployment("https://services.sentinel-hub.com", _MAIN_REALM),  # the default
    "us-west": Deployment("https://services-uswest2.sentinel-hub.com", _MAIN_REALM),
    "cdse": Deployment("https://sh.dataspace.copernicus.eu",  # Copernicus Data Space Ecosystem
                       "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"),
}
DEFAULT_BASE_URL = DEPLOYMENTS["eu"].base_url
DEFAULT_TOKEN_URL = DEPLOYMENTS["eu"].token_url
# oauthlib's own opt-in for plain-HTTP OAuth; we honour it for non-loopback hosts too.
INSECURE_TRANSPORT_VARIABLE = "OAUTHLIB_INSECURE_TRANSPORT"
# Only these opt in (stripped, any case): "0" or "false" must not send a secret in clear.
INSECURE_TRANSPORT_YES = frozenset({"1", "true", "yes", "on"})
LIST_TIMEOUT_VARIABLE = "RECONCILER_LIST_TIMEOUT"


class MissingCredentials(ReconcilerError):
    """The OAuth client id or secret is not configured."""


class InvalidSettings(ReconcilerError):
    """A configured value cannot work (a malformed URL, a negative timeout)."""


@dataclass(frozen=True)
class ApiSettings:
    """How to reach the Batch API and how patient to be with it. The secret never shows in repr/str.

    Retry defaults: a transient failure (5xx, timeout, dropped connection) is tried up to
    `max_attempts` times with backoff from `backoff_base` doubling to `backoff_max`, and never past
    `retry_budget` seconds after the call started; a 429 waits the server's `Retry-After` up to
    `rate_limit_budget` seconds of waiting (and `rate_limit_attempts` answers) in one call.

    Bounds against a broken or hostile server (docs/security.md): one HTTP exchange ends within
    `request_deadline` seconds however slowly the answer trickles, reads at most
    `max_response_bytes` of (decoded) body, and a listing stops after `max_pages` pages (10,000
    pages of 100 is a million jobs) or once it has run for `list_deadline` seconds (default 10
    minutes; RECONCILER_LIST_TIMEOUT), whichever comes first: a server that trickles an endless
    listing, each page within its own deadline, cannot hold a run for days.
    """

    client_id: str
    client_secret: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    token_url: str = DEFAULT_TOKEN_URL
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_budget: float = 120.0
    rate_limit_budget: float = 120.0
    rate_limit_attempts: int = 30
    request_deadline: float = 120.0
    max_response_bytes: int = 64 * 1024 * 1024
    max_pages: int = 10_000
    list_deadline: float = 600.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _normalise_url(self.base_url, "SH_BASE_URL"))
        object.__setattr__(self, "token_url", _normalise_url(self.token_url, "SH_TOKEN_URL"))
        for name in ("connect_timeout", "read_timeout", "backoff_base", "backoff_max",
                     "retry_budget", "rate_limit_budget", "request_deadline", "list_deadline"):
            if not getattr(self, name) > 0:
                raise InvalidSettings(f"API setting `{name}` must be a positive number of seconds")
        for name in ("max_attempts", "rate_limit_attempts", "max_response_bytes", "max_pages"):
            if getattr(self, name) < 1:
                raise InvalidSettings(f"API setting `{name}` must be at least 1")

    @property
    def timeout(self) -> tuple[float, float]:
        """The (connect, read) pair `requests` takes."""
        return (self.connect_timeout, self.read_timeout)


def api_settings(environ: Mapping[str, str] = os.environ, deployment: str | None = None,
                 **overrides: object) -> ApiSettings:
    """Settings by sentinelhub-py's precedence, per field: non-None `overrides` (flags, tests), then
    SH_CLIENT_ID, SH_CLIENT_SECRET and the service's URLs (`deployment`, else SH_DEPLOYMENT, else
    SH_BASE_URL/SH_TOKEN_URL), then the sentinelhub-py profile (`read_profile`); a listing's
    deadline from RECONCILER_LIST_TIMEOUT (a duration). Raises MissingCredentials, InvalidSettings
    or profiles.InvalidProfile."""
    known = {f.name for f in fields(ApiSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown API setting(s): {', '.join(unknown)}")
    profile = read_profile(environ)
    base_url, token_url = service_urls(environ, deployment, profile)
    values: dict[str, object] = {
        "client_id": environ.get("SH_CLIENT_ID", "").strip() or profile.values.get("SH_CLIENT_ID", ""),
        "client_secret": environ.get("SH_CLIENT_SECRET", "").strip() or profile.values.get("SH_CLIENT_SECRET", ""),
        "base_url": base_url,
        "token_url": token_url,
    }
    if text := environ.get(LIST_TIMEOUT_VARIABLE, "").strip():
        values["list_deadline"] = _list_timeout(text)
    values.update({k: v for k, v in overrides.items() if v is not None})
    missing = [var for var, key in (("SH_CLIENT_ID", "client_id"), ("SH_CLIENT_SECRET", "client_secret"))
               if not values[key]]
    if missing:
        raise _missing_credentials(missing, profile)
    # fields by name, of several types (the names are checked above, the bounds by ApiSettings)
    settings = ApiSettings(**values)  # type: ignore[arg-type]
    _check_transport(settings, environ, profile)
    return settings


def _missing_credentials(missing: list[str], profile: Profile) -> MissingCredentials:
    keys = " or ".join(PROFILE_KEYS[var] for var in missing)
    return MissingCredentials(
        f"no Sentinel Hub credentials: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set, "
        f"and {profile.lacking(keys)}",
        "set SH_CLIENT_ID and SH_CLIENT_SECRET to an OAuth client of your Sentinel Hub account, or give that "
        "profile sh_client_id and sh_client_secret (edit the file, or run `sentinelhub.config"
        f"{'' if profile.name == DEFAULT_PROFILE else ' --profile ' + profile.name} --sh_client_id ID "
        "--sh_client_secret SECRET`), or pick another profile with SH_PROFILE; or source the env file that "
        "`reconciler sandbox serve --env-file FILE` writes",
    )


def _list_timeout(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        raise InvalidSettings(f"{LIST_TIMEOUT_VARIABLE}: {e}", "the default is 10m") from None
    if seconds <= 0:
        raise InvalidSettings(f"{LIST_TIMEOUT_VARIABLE}: a listing's deadline must be longer than 0s",
                              "the default is 10m")
    return seconds


def service_urls(environ: Mapping[str, str], deployment: str | None = None,
                 profile: Profile | None = None) -> tuple[str, str]:
    """The API and token URLs: a named deployment's (`deployment`, else SH_DEPLOYMENT); else SH_BASE_URL,
    else the profile's sh_base_url (default EU), and SH_TOKEN_URL, else the profile's sh_token_url, else
    the realm of the deployment the base URL names (the EU realm for others). A deployment and SH_*
    URLs that name another service are refused rather than guessed between; a deployment outranks
    a profile's URLs (`profile`: reconciler.profiles.read_profile(environ) when not given)."""
    name = (deployment or environ.get("SH_DEPLOYMENT", "")).strip()
    base = environ.get("SH_BASE_URL", "").strip()
    token = environ.get("SH_TOKEN_URL", "").strip()
    if not name:
        profile = read_profile(environ) if profile is None else profile
        base, base_from = (base, "SH_BASE_URL") if base else profile.value("SH_BASE_URL")
        token, token_from = (token, "SH_TOKEN_URL") if token else profile.value("SH_TOKEN_URL")
        base = _normalise_url(base, base_from) if base else DEFAULT_BASE_URL
        known = next((d for d in DEPLOYMENTS.values() if d.base_url == base), DEPLOYMENTS["eu"])
        return base, _normalise_url(token, token_from) if token else known.token_url
    chosen = DEPLOYMENTS.get(name)
    if chosen is None:
        raise InvalidSettings(f"unknown deployment {name!r} (SH_DEPLOYMENT or --deployment)",
                              f"choose one of {', '.join(DEPLOYMENTS)}, or leave it unset and set SH_BASE_URL "
                              "and SH_TOKEN_URL")
    for variable, given, expected in (("SH_BASE_URL", base, chosen.base_url), ("SH_TOKEN_URL", token, chosen.token_url)):
        if given and _normalise_url(given, variable) != expected:
            raise InvalidSettings(f"{variable} ({given}) is not the {variable.split('_')[1].lower()} URL of "
                                  f"deployment {name!r} ({expected})",
                                  "set either the deployment or SH_BASE_URL and SH_TOKEN_URL, not both")
    return chosen.base_url, chosen.token_url


def _normalise_url(url: str, variable: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSettings(f"{variable} is not an http(s) URL: {url!r}",
                              f"set {variable} to a URL such as {DEFAULT_BASE_URL}")
    return url


def _check_transport(settings: ApiSettings, environ: Mapping[str, str], profile: Profile | None = None) -> None:
    # The client secret and the bearer token travel in clear over http: fine on loopback (the
    # sandbox), otherwise only when the user opted in the way oauthlib asks for.
    if environ.get(INSECURE_TRANSPORT_VARIABLE, "").strip().lower() in INSECURE_TRANSPORT_YES:
        return
    for variable, url in (("SH_BASE_URL", settings.base_url), ("SH_TOKEN_URL", settings.token_url)):
        if profile and not environ.get(variable, "").strip() and profile.values.get(variable, "").rstrip("/") == url:
            variable = profile.value(variable)[1]  # the URL came from the profile: name it there
        if url.startswith("http://") and not is_loopback(urlsplit(url).hostname or ""):
            raise InvalidSettings(
                f"{variable} uses plain http on a non-local host: {url}",
                f"use https, or set {INSECURE_TRANSPORT_VARIABLE}=1 if sending credentials in clear is intended",
            )


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION = 365 * 86400.0  # longer is a typo: a lease or a wait of years cannot be meant


def parse_duration(text: str) -> float:
    """`90`, `90s`, `1.5m`, `10m`, `2h`, `500ms`, `1h30m` → seconds, at most a year; ValueError otherwise."""
    import re

    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        seconds = float(text)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{text!r} is not a duration (examples: 30s, 10m, 1h30m, 500ms)")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds > MAX_DURATION:
        raise ValueError(f"{text!r} is out of range: the longest duration is 365d")
    return seconds


def state_location(flag: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """`--state`, else RECONCILER_STATE (docs/lockfile.md)."""
    from reconciler.errors import StateError

    location = flag or environ.get("RECONCILER_STATE")
    if not location:
        raise StateError("no state location", "set RECONCILER_STATE (s3://bucket/key.json or a local path) or pass --state")
    return location


def lease_ttl(flag: float | None, environ: Mapping[str, str] = os.environ) -> float:
    """`--lease-ttl`, else RECONCILER_LEASE_TTL, else 10 minutes."""
    if flag is not None:
        ttl, source = flag, "--lease-ttl"
    elif text := environ.get("RECONCILER_LEASE_TTL"):
        try:
            ttl, source = parse_duration(text), "RECONCILER_LEASE_TTL"
        except ValueError as e:
            raise InvalidSettings(f"RECONCILER_LEASE_TTL: {e}") from None
    else:
        return 600.0
    if ttl < 1:
        raise InvalidSettings(f"{source}: a lease must live at least 1s", "the default is 10m; it is renewed while held")
    return ttl


PLAN_KEY_VARIABLE = "RECONCILER_PLAN_KEY"
MIN_PLAN_KEY = 16  # characters: a key short enough to guess would sign forged plans


def plan_key(environ: Mapping[str, str] = os.environ, client_secret: str | None = None) -> bytes:
    """The key that signs saved plans and keys every digest a plan publishes (docs/plan-file.md):
    RECONCILER_PLAN_KEY when set, else one derived from the OAuth client secret (`client_secret`,
    the run's API settings', else SH_CLIENT_SECRET), so only a job that holds one of them can sign
    a plan or confirm a guess against a published digest. Never shown."""
    import hashlib
    import hmac

    given = environ.get(PLAN_KEY_VARIABLE, "").strip()
    if given:
        if len(given) < MIN_PLAN_KEY:
            raise InvalidSettings(f"{PLAN_KEY_VARIABLE} is too short to sign plans (at least {MIN_PLAN_KEY} characters)",
                                  "use a random value, e.g. the output of `openssl rand -hex 32`")
        return hmac.new(b"reconciler plan key", given.encode(), hashlib.sha256).digest()
    secret = (client_secret or environ.get("SH_CLIENT_SECRET", "")).strip()
    if secret:
        return hmac.new(b"reconciler plan key from SH_CLIENT_SECRET", secret.encode(), hashlib.sha256).digest()
    raise MissingCredentials(f"no plan key: neither {PLAN_KEY_VARIABLE} nor an OAuth client secret (SH_CLIENT_SECRET, "
                             "or a sentinelhub-py profile's sh_client_secret) is set",
                             "saved plans are signed and checked with it: set the one the plan was made with")
