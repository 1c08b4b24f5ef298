"""The one door to the Batch API: an OAuth2 client-credentials session and the retry policy.

Live-state I/O (`api/` in docs/architecture.md). `api/client.py` builds paths and parses models on top of
`ApiSession.request`; this module owns the token, timeouts and retries, and is the boundary where
every `requests`, `urllib3`, `oauthlib` and `json` exception becomes an `api/errors.py` error.

Retry policy, per call:
- 429: wait the server's `Retry-After` (milliseconds; exponential backoff when absent), within
  `rate_limit_budget` seconds of waiting. Safe for every request: the server did nothing. The
  wait holds back every thread of the session, and from then on requests are spaced to just under
  the rate the service accepted in the last second (`reconciler.api.pacer`), so parallel applies
  run at the limit instead of bouncing off it.
- 5xx, timeouts, dropped connections: backoff with jitter, up to `max_attempts` and `retry_budget`.
- A non-idempotent request (create) is never re-sent once it may have reached the server: a 5xx,
  a read timeout or a broken connection raise CreateOutcomeUnknown. Only failures known to happen
  before sending (refused connection, unknown host, connect timeout), a 429 and a 401 re-send it.
- An exchange that outlives `request_deadline` or whose answer passes `max_response_bytes`
  (`reconciler.api.transport`) is not retried: the server had its chance, and a create may have
  been carried out.
- Redirects are followed for reads only, and the bearer token never follows one to another host
  (it is a header of ours, which `requests` drops on a change of host). The token request and
  writes are never re-sent to wherever a 3xx points: that answer is an error.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import BackendApplicationClient, InsecureTransportError, OAuth2Error
from pydantic_core import from_json
from requests_oauthlib import OAuth2Session

from reconciler.api.errors import (
    ApiError,
    ApiUnavailable,
    AuthError,
    CreateOutcomeUnknown,
    WrongTokenUrl,
    error_for_status,
    is_web_page,
    parse_error_body,
)
from reconciler.api.pacer import Pacer
from reconciler.api.transport import TRANSPORT_ERRORS, BoundedAdapter, classify_failure, no_redirects, redirect_target
from reconciler.redaction import remember
from reconciler.settings import DEPLOYMENTS, INSECURE_TRANSPORT_VARIABLE, ApiSettings, is_loopback

log = logging.getLogger(__name__)
T = TypeVar("T")


def _no_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


# requests-oauthlib logs the token request's body (the client secret) and the tokens at DEBUG;
# whoever turns on debug logging later must not leak them. (A filter acts only on the logger that
# emits the record, hence the module's own logger.)
logging.getLogger("requests_oauthlib.oauth2_session").addFilter(_no_debug)

_FOLLOWS_REDIRECTS = ("GET", "HEAD")  # reads; a write's body (and the token request's secret) stays put


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The Batch API's `Retry-After` is in milliseconds; None when absent or unreadable."""
    value = headers.get("Retry-After")
    try:
        seconds = float(value) / 1000 if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


class RetryBudget:
    """The patience of one call: attempts and time spent on failures, time waited on 429s."""

    def __init__(self, settings: ApiSettings, clock: Callable[[], float], jitter: Callable[[], float]):
        self._settings = settings
        self._clock = clock
        self._jitter = jitter
        self._started = clock()
        self.failures = 0
        self.rate_limited = 0
        self.rate_waited = 0.0

    def after_failure(self) -> float | None:
        """Seconds to wait before trying again after a transient failure; None once spent."""
        self.failures += 1
        if self.failures >= self._settings.max_attempts:
            return None
        delay = self._backoff(self.failures - 1)
        spent = self._clock() - self._started - self.rate_waited
        return None if spent + delay > self._settings.retry_budget else delay

    def after_rate_limit(self, retry_after: float | None) -> float | None:
        """Seconds to wait after a 429 (the server's figure when given); None once spent."""
        self.rate_limited += 1
        delay = retry_after if retry_after is not None else self._backoff(self.rate_limited - 1)
        if self.rate_limited >= self._settings.rate_limit_attempts:
            return None
        if self.rate_waited + delay > self._settings.rate_limit_budget:
            return None
        self.rate_waited += delay
        return delay

    def _backoff(self, retry: int) -> float:
        # "Equal jitter": at least half the exponential step, so clients spread without hammering.
        step = min(self._settings.backoff_max, self._settings.backoff_base * 2 ** min(retry, 32))
        return step * (0.5 + 0.5 * self._jitter())


class _Answered(Exception):
    """A non-2xx answer, raised inside an attempt so that one loop decides what it means."""

    def __init__(self, response: requests.Response):
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    idempotent: bool = True
    token_endpoint: bool = False


class ApiSession:
    """Authenticated, retrying access to the Batch API for one set of settings.

    `sleep`, `clock` (monotonic seconds) and `jitter` (a float in [0, 1)) are injectable so tests
    need not wait. One token is shared by all calls (and threads) until it nears expiry."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ):
        self.settings = settings
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._http = OAuth2Session(client=BackendApplicationClient(client_id=settings.client_id))
        self._http.register_compliance_hook("access_token_request", no_redirects)
        self._http.register_compliance_hook("access_token_response", _raise_unless_ok)
        adapter = BoundedAdapter(deadline=settings.request_deadline, max_bytes=settings.max_response_bytes)
        for scheme in ("https://", "http://"):
            self._http.mount(scheme, adapter)
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self.pacer = Pacer(clock, sleep)
        self._refresh_at = math.inf
        remember([settings.client_secret])  # an answer may echo it: every output hides it
        _allow_plain_http_on_loopback(settings)

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                idempotent: bool = True) -> Any:
        """Send `method path` (path under SH_BASE_URL) and return the decoded JSON answer, or None
        for an empty one. Raises only ApiError subclasses."""
        call = _Call(method.upper(), path, idempotent)
        url = self.settings.base_url + path

        def attempt() -> requests.Response:
            token = self._bearer()
            response = self._send(call.method, url, json, params, token)
            if response.status_code == 401:
                # The token may have been revoked or expired early: one new token, one more try.
                # Safe even for a create: the server refused it before doing anything.
                self._forget_token(token)
                response = self._send(call.method, url, json, params, self._bearer())
            if response.status_code >= 300:  # a 3xx left over: a write's redirect, or one reads cannot follow
                raise _Answered(response)
            return response

        return self._decode(self._retrying(attempt, call), call)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, url: str, json: Any, params: Mapping[str, Any] | None,
              token: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        # withhold_token: the token's lifetime is ours to judge (on the injected clock), not oauthlib's.
        return self._http.request(method, url, json=json, params=params, headers=headers,
                                  timeout=self.settings.timeout, withhold_token=True,
                                  allow_redirects=method in _FOLLOWS_REDIRECTS)

    def _retrying(self, attempt: Callable[[], T], call: _Call) -> T:
        budget = RetryBudget(self.settings, self._clock, self._jitter)
        while True:
            sent = self.pacer.turn()
            try:
                return attempt()
            except _Answered as answer:
                wait = self._after_answer(answer.response, call, budget)
                if answer.response.status_code == 429:
                    self.pacer.refused(sent, wait)  # the next turn() waits; everyone else's too
                    log.info("%s %s: rate limited; trying again in %.2f s", call.method, call.path, wait)
                    continue
            except OAuth2Error as exc:
                raise self._oauth_error(exc, call) from exc
            except TRANSPORT_ERRORS as exc:
                wait = self._after_transport_failure(exc, call, budget)
            log.info("%s %s: trying again in %.2f s", call.method, call.path, wait)
            self._sleep(wait)

    def _after_answer(self, response: requests.Response, call: _Call, budget: RetryBudget) -> float:
        status = response.status_code
        if 300 <= status < 400 and (call.token_endpoint or call.method not in _FOLLOWS_REDIRECTS):
            raise self._redirect_error(response, call)
        if status == 429:
            wait = budget.after_rate_limit(retry_after_seconds(response.headers))
            if wait is None:
                raise self._status_error(response, call, f"still rate limited after {budget.rate_limited} answers")
            return wait
        if status >= 500 and not call.idempotent:
            said = parse_error_body(response.content)
            raise CreateOutcomeUnknown(
                f"the server answered {status}" + (f" ({said.message})" if said.message else "")
                + "; the request may have been carried out, so it is not sent again",
                method=call.method, path=call.path, status=status, code=said.code, reason=said.reason,
                server_message=said.message, errors=said.errors)
        if status >= 500:
            wait = budget.after_failure()
            if wait is None:
                raise self._status_error(response, call, f"gave up after {budget.failures} attempt(s)")
            return wait
        raise self._status_error(response, call)

    def _after_transport_failure(self, exc: BaseException, call: _Call, budget: RetryBudget) -> float:
        failure = classify_failure(exc)
        if failure.sent and not call.idempotent:
            raise CreateOutcomeUnknown(
                f"{failure.description}; the request may have been carried out, so it is not sent again",
                method=call.method, path=call.path) from exc
        wait = budget.after_failure() if failure.transient else None
        if wait is None:
            tries = f" (gave up after {budget.failures} attempt(s))" if failure.transient else ""
            raise ApiUnavailable(failure.description + tries, method=call.method, path=call.path,
                                 hint=self._unavailable_hint(call)) from exc
        return wait

    def _status_error(self, response: requests.Response, call: _Call, note: str | None = None) -> ApiError:
        error = error_for_status(response.status_code, response.content, method=call.method, path=call.path,
                                 token_endpoint=call.token_endpoint, note=note,
                                 content_type=response.headers.get("Content-Type", ""))
        if isinstance(error, WrongTokenUrl):
            error.hint = self._wrong_token_url_hint()
        return error

    def _wrong_token_url_hint(self) -> str:
        # Not the credentials' fault: the usual slip is a token URL of another deployment, or a
        # legacy or guessed one, so say which realm the base URL's deployment issues tokens at.
        token, base = self.settings.token_url, self.settings.base_url
        hint = (f"the token URL ({token}) is no OAuth token endpoint: check SH_TOKEN_URL, or sh_token_url of "
                "the sentinelhub-py profile in use (SH_PROFILE)")
        named = next(((name, d) for name, d in DEPLOYMENTS.items() if d.base_url == base), None)
        if named is None:
            realms: dict[str, list[str]] = {}
            for name, deployment in DEPLOYMENTS.items():
                realms.setdefault(deployment.token_url, []).append(name)
            listed = "; ".join(f"{' and '.join(names)}: {url}" for url, names in realms.items())
            return f"{hint}; the named deployments issue tokens at {listed}"
        if named[1].token_url == token:
            return f"{hint}; it is deployment {named[0]!r}'s own realm, so a proxy in between may be answering"
        return f"{hint}; deployment {named[0]!r} ({base}) issues its tokens at {named[1].token_url}"

    def _redirect_error(self, response: requests.Response, call: _Call) -> ApiError:
        # Not retried, and not CreateOutcomeUnknown: the server that got the request answered
        # "go elsewhere" instead of carrying it out.
        variable = "SH_TOKEN_URL" if call.token_endpoint else "SH_BASE_URL"
        status = response.status_code
        return ApiError(f"the service answered a redirect ({status} {redirect_target(response)}); redirects are "
                        "not followed for the token request or writes", method=call.method, path=call.path,
                        status=status, hint=f"point {variable} at the final address (where the redirect leads)")

    def _oauth_error(self, exc: OAuth2Error, call: _Call) -> ApiError:
        if isinstance(exc, InsecureTransportError):
            return ApiUnavailable("refusing to send credentials over plain http", method=call.method,
                                  path=call.path, hint=f"use https URLs, or set {INSECURE_TRANSPORT_VARIABLE}=1")
        # Outside the token endpoint oauthlib only objects before anything is sent.
        what = "the token endpoint refused" if call.token_endpoint else "the OAuth client refused to send"
        description = f": {exc.description}" if exc.description else ""
        return AuthError(f"{what}: {exc.error or type(exc).__name__}{description}", method=call.method,
                         path=call.path, status=exc.status_code, code=exc.error)

    def _unavailable_hint(self, call: _Call) -> str:
        variable, url = (("SH_TOKEN_URL", self.settings.token_url) if call.token_endpoint
                         else ("SH_BASE_URL", self.settings.base_url))
        return f"check the network and {variable} ({url}); the service may also be down"

    def _decode(self, response: requests.Response, call: _Call) -> Any:
        if not response.content:
            return None
        try:
            return from_json(response.content)  # pydantic's parser: a third faster than json's on a listing page
        except ValueError:
            cls = ApiUnavailable if call.idempotent else CreateOutcomeUnknown
            raise cls(f"the answer ({response.status_code}) is not valid JSON", method=call.method,
                      path=call.path, status=response.status_code) from None

    # -- the token -------------------------------------------------------------------------------

    def _bearer(self) -> str:
        with self._token_lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, self._refresh_at = self._fetch_token()
            return self._token

    def _forget_token(self, stale: str) -> None:
        with self._token_lock:
            if self._token == stale:  # another thread may have replaced it already
                self._token = None

    def _fetch_token(self) -> tuple[str, float]:
        """A new access token and the clock time at which to replace it."""
        settings = self.settings
        call = _Call("POST", urlsplit(settings.token_url).path or "/", token_endpoint=True)

        def attempt() -> Mapping[str, Any]:
            # include_client_id: the service wants the credentials in the form body, not Basic auth.
            return self._http.fetch_token(settings.token_url, client_secret=settings.client_secret,
                                          include_client_id=True, timeout=settings.timeout)

        try:
            token = self._retrying(attempt, call)
        except (ValueError, Warning) as exc:  # oauthlib: unusable expires_in, a changed scope
            raise AuthError(f"the token endpoint answered an unusable token ({exc})", method=call.method,
                            path=call.path) from exc
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthError("the token endpoint answered without an access token", method=call.method,
                            path=call.path)
        remember([access])
        return access, self._clock() + _refresh_after(token.get("expires_in"))


def _refresh_after(expires_in: Any) -> float:
    # Renew when less than min(60 s, a quarter of the lifetime) is left, so a request never leaves
    # with a token that expires on its way; without a lifetime, rely on the 401 retry.
    if not isinstance(expires_in, (int, float)) or expires_in <= 0:
        return math.inf if expires_in is None else 0.0
    return expires_in - min(60.0, expires_in / 4)


def _raise_unless_ok(response: requests.Response) -> requests.Response:
    # oauthlib reads any answer body as a token response; a 429 or 5xx must reach the retry loop
    # instead, and a 3xx or 4xx (or a web page: a login portal's, a wrong URL's) is reported with its
    # status rather than as oauthlib's guess.
    if response.status_code >= 300 or is_web_page(response.content, response.headers.get("Content-Type", "")):
        raise _Answered(response)
    return response


def _allow_plain_http_on_loopback(settings: ApiSettings) -> None:
    # oauthlib refuses http unless this process-wide switch is set; the sandbox serves plain http
    # on loopback, where no credential leaves the machine. Other http hosts need the user's opt-in.
    parts = [urlsplit(settings.base_url), urlsplit(settings.token_url)]
    if any(p.scheme == "http" for p in parts) and all(
            p.scheme == "https" or is_loopback(p.hostname or "") for p in parts):
        os.environ.setdefault(INSECURE_TRANSPORT_VARIABLE, "1")
