"""Errors of the Batch API, as the rest of the program sees them.

Built at one boundary, `api/session.py`, from HTTP statuses, the service's error bodies and
transport failures; nothing above it ever sees a `requests`, `oauthlib`, `json` or `pydantic`
exception. Each error names the request (method and path, never a token, a query or a body)
and carries what the service said, so the engine can decide and the CLI can explain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from reconciler.errors import ReconcilerError
from reconciler.redaction import from_service, redact, scrub

_MAX_DETAIL = 300


class ApiError(ReconcilerError):
    """Any failure talking to the Batch API or its token endpoint."""

    default_hint: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        code: str | None = None,
        reason: str | None = None,
        server_message: str | None = None,
        errors: Any = None,
        hint: str | None = None,
    ):
        where = f"{method} {path}".strip()
        # the message may quote the service, which may echo a secret it was sent (docs/security.md)
        super().__init__(scrub(f"{where}: {message}" if where else message), hint or self.default_hint)
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.reason = reason
        self.server_message = server_message
        self.errors = errors


class BadRequest(ApiError):
    """400: the service refused the request as invalid (or the action does not fit the job's status)."""

    default_hint = ("the service's message names what it refused; `reconciler validate` checks "
                    "manifests offline, and an action (analyse, start, stop) must fit the job's status")


class AuthError(ApiError):
    """401/403 from the API, or the token endpoint refused the client credentials."""

    default_hint = ("check SH_CLIENT_ID and SH_CLIENT_SECRET (or sh_client_id and sh_client_secret of the "
                    "sentinelhub-py profile in use): an OAuth client of the deployment in use (--deployment or "
                    "SH_DEPLOYMENT: eu, us-west, cdse; or SH_BASE_URL with its SH_TOKEN_URL)")


class WrongTokenUrl(AuthError):
    """The token URL answered as no OAuth token endpoint does: no such resource (404, 410), no POST
    there (405), or a web page. The URL is wrong, not the client's credentials."""

    default_hint = "check SH_TOKEN_URL (or sh_token_url of the sentinelhub-py profile in use)"


class NotFound(ApiError):
    """404: no such batch request (or grid) for this account."""

    default_hint = ("the id may be wrong, or the service deleted the request as stale; a request "
                    "created moments ago can also take a little while to appear")


class Conflict(ApiError):
    """409: the request cannot change now (it is processing or queued to process)."""

    default_hint = "a job that is processing or queued cannot be updated; wait for it to finish, or stop it"


class RateLimited(ApiError):
    """429 that outlasted the wait budget."""

    default_hint = ("the account's rate limit is exhausted; retry in a minute, or lower "
                    "`--parallelism` so fewer requests run at once")


class ServerError(ApiError):
    """5xx that outlasted the retry budget."""

    default_hint = "the service is failing; retry later (transient errors were already retried)"


class ApiUnavailable(ApiError):
    """No usable answer: connection failures, timeouts, TLS errors, malformed responses."""

    default_hint = "check the network and SH_BASE_URL; the service may also be down or behind a failing proxy"


class CreateOutcomeUnknown(ApiError):
    """A create may or may not have happened (it reached the server, then the answer was lost).

    It is never re-sent: the engine looks the job up by its ownership marker instead."""

    default_hint = ("the job may exist now; the next plan finds it by its ownership marker and "
                    "adopts it instead of creating it twice")


@dataclass(frozen=True)
class ErrorFields:
    """What an error body says, whichever of the service's shapes it came in."""

    reason: str | None = None
    message: str | None = None
    code: str | None = None
    errors: Any = None


_BY_STATUS: dict[int, type[ApiError]] = {400: BadRequest, 401: AuthError, 403: AuthError, 404: NotFound,
                                         409: Conflict, 429: RateLimited}


_NO_SUCH_ENDPOINT = frozenset({404, 405, 410})


def is_web_page(body: bytes, content_type: str = "") -> bool:
    """An HTML answer: a portal's, a proxy's or a web server's page, never an OAuth or API answer."""
    start = body[:512].lstrip().lower()
    return "html" in content_type.lower() or start.startswith(b"<!doctype html") or b"<html" in start


def error_for_status(status: int, body: bytes, *, method: str, path: str, token_endpoint: bool = False,
                     note: str | None = None, content_type: str = "") -> ApiError:
    """The error a failed (or, from the token endpoint, unusable) answer means (`note` says what was
    tried). At the token endpoint every other answer but 429 is an AuthError: a WrongTokenUrl when it
    says there is no token endpoint there (404, 405, 410, a web page), else about the credentials."""
    page = token_endpoint and is_web_page(body, content_type)
    fields = ErrorFields(message="a web page, not an OAuth answer") if page else parse_error_body(body)
    if status >= 500:
        cls: type[ApiError] = ServerError
    elif token_endpoint and status != 429:
        cls = WrongTokenUrl if status in _NO_SUCH_ENDPOINT or page else AuthError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    reason = fields.reason or _phrase(status)
    text = f"{status} {reason}" + (f": {fields.message}" if fields.message else "")
    if fields.code:
        text += f" [{fields.code}]"
    if fields.errors:
        text += f"; details: {_compact(fields.errors)}"
    if token_endpoint:
        text = "the token endpoint answered " + text
    if note:
        text += f" ({note})"
    return cls(text, method=method, path=path, status=status, code=fields.code, reason=reason,
               server_message=fields.message, errors=fields.errors)


def parse_error_body(body: bytes) -> ErrorFields:
    """Read `{"error": {status, reason, message, code, errors}}`, an OAuth `{"error": "invalid_client",
    "error_description": …}`, or plain text (a proxy's page); never fails. Every text is the
    service's: known secrets are hidden and its length bounded (reconciler.redaction)."""
    fields = _error_fields(body)
    return ErrorFields(from_service(fields.reason), from_service(fields.message), from_service(fields.code),
                       fields.errors)


def _error_fields(body: bytes) -> ErrorFields:
    from pydantic import ValidationError

    from reconciler.batch.models.common import ErrorBody

    try:
        data = json.loads(body) if body else None
    except ValueError:
        return ErrorFields(message=_snippet(body))
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        try:
            detail = ErrorBody.model_validate(data).error
        except ValidationError:
            return ErrorFields(message=_snippet(body))
        return ErrorFields(detail.reason, detail.message, detail.code, redact(detail.errors))
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        description = data.get("error_description")
        return ErrorFields(message=str(description) if description else None, code=data["error"])
    return ErrorFields(message=_snippet(body) if body else None)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"


def _compact(details: Any) -> str:
    # scrubbed before it is cut: a secret across the cut would otherwise leave its start behind
    text = scrub(json.dumps(details, separators=(",", ":"), ensure_ascii=False, default=str)[: _MAX_DETAIL * 8])
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _snippet(body: bytes) -> str:
    # A proxy's HTML error page is noise beyond its first line; keep enough to recognise it.
    text = body.decode("utf-8", errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= 200 else first[:199] + "…"
