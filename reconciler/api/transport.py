"""The wire under `api/session.py`: a `requests` adapter that bounds each HTTP exchange in time and
size, and what a transport failure means for retrying (`classify_failure`).

Live-state I/O (`api/` in docs/architecture.md; HTTP answers are bounded: docs/security.md). `ApiSession` mounts
`BoundedAdapter` for http and https, so the token request and every API call pass through it; the
exceptions it adds (`DeadlineExceeded`, `ResponseTooLarge`) are `requests` exceptions that the
session's boundary classifies like any other transport failure.

Why a deadline and not only timeouts: `requests`' read timeout bounds each read, so a server that
trickles one byte a second (in the status line, the headers or the body) holds a call forever.
Design: every exchange gets a `_Deadline`; when it passes, the adapter's watchdog thread shuts down
the socket of each connection in use for the exchange, so a blocked read returns at once and
http.client/urllib3 fail. Connections find the exchange's deadline through a thread-local (`requests`
is synchronous: the thread that sends is the one that reads); our pool classes give every pool,
proxied ones included, a connection class that registers itself when it connects and when it sends.
A lock and a done flag keep the watchdog from touching a connection once the exchange has ended. A
connection that was shut down and went back to the pool is discarded by urllib3 on its next checkout
(it reads as dropped). Shutting down (not closing) leaves the descriptor to its owner; on the raw
socket it also works for TLS without touching TLS state that the reading thread is using. One
watchdog thread per adapter, not a timer thread per exchange: starting a thread cost a fifth of a
loopback request, and deadlines of one length fall due in the order they were set, so a queue is
all the watchdog needs.

Size: the adapter always streams, then reads the body itself (decoded, so a gzip bomb counts at its
real size) up to `max_bytes`, refusing at once a Content-Length above it; `response.content` is then
set as `requests` would have set it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import poolmanager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError

_CHUNK = 64 * 1024
_current = threading.local()  # .deadline: the exchange this thread is in, if any


class DeadlineExceeded(requests.exceptions.RequestException):
    """No complete answer within the request deadline; the request may have reached the server."""


class ResponseTooLarge(requests.exceptions.RequestException):
    """The answer is larger than the configured cap; the request reached the server."""


# Everything the transport may raise. RequestException is an OSError; urllib3 lets a few of its
# own errors through `requests` unwrapped, and certificate-path problems surface as bare OSError.
TRANSPORT_ERRORS = (requests.RequestException, Urllib3Error, OSError)
_BEFORE_SENDING = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                   requests.exceptions.InvalidSchema, requests.exceptions.URLRequired,
                   requests.exceptions.InvalidHeader, requests.exceptions.InvalidJSONError)
_AFTER_SENDING = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                  requests.exceptions.ContentDecodingError)


@dataclass(frozen=True)
class Failure:
    """What a transport failure means for retrying: may the request have reached the server, and
    is another try worthwhile."""

    description: str
    sent: bool
    transient: bool


def classify_failure(exc: BaseException) -> Failure:
    """Sort a transport exception by whether the request may have been received (order matters:
    ConnectTimeout and SSLError are ConnectionErrors, JSONDecodeError is an InvalidJSONError)."""
    if isinstance(exc, (DeadlineExceeded, ResponseTooLarge)):
        return Failure(str(exc), sent=True, transient=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure("could not connect in time (connect timeout)", sent=False, transient=True)
    if isinstance(exc, requests.exceptions.SSLError):
        return Failure("TLS handshake failed (certificate or protocol error)", sent=False, transient=False)
    if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
        return Failure("could not connect (connection refused or unknown host)", sent=False, transient=True)
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return Failure("the answer is not valid JSON", sent=True, transient=False)
    if isinstance(exc, _BEFORE_SENDING):
        return Failure(f"the request could not be built ({type(exc).__name__})", sent=False, transient=False)
    if isinstance(exc, requests.Timeout):
        return Failure("no answer in time (read timeout)", sent=True, transient=True)
    if isinstance(exc, _AFTER_SENDING):
        return Failure(f"the connection broke before the answer arrived ({type(exc).__name__})",
                       sent=True, transient=True)
    return Failure(f"the request failed ({type(exc).__name__})", sent=True, transient=False)


def _never_connected(exc: BaseException) -> bool:
    # requests wraps urllib3's MaxRetryError, whose `reason` says whether a connection was ever made.
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    return isinstance(reason, (NewConnectionError, ConnectionRefusedError, socket.gaierror))


class BoundedAdapter(HTTPAdapter):
    """An HTTPAdapter whose every exchange ends within `deadline` seconds and reads at most
    `max_bytes` of (decoded) body; `send` always returns a response whose content is read."""

    def __init__(self, *, deadline: float, max_bytes: int, **kwargs: Any):
        self.watchdog = _Watchdog(deadline)
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> poolmanager.PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watch_pools(manager)
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        deadline = self.watchdog.deadline()
        outer = getattr(_current, "deadline", None)
        _current.deadline = deadline
        try:
            response = super().send(request, stream=True, timeout=timeout, verify=verify, cert=cert,
                                    proxies=proxies)
            _read_body(response, self.max_bytes)
        except Exception as exc:
            if deadline.finish():  # whatever broke, it broke because the watchdog cut the socket
                raise deadline.exceeded(request) from exc
            raise
        finally:
            _current.deadline = outer
        if deadline.finish():  # a cut socket can look like a short answer that ended normally
            response.close()
            raise deadline.exceeded(request)
        return response

    def close(self) -> None:
        self.watchdog.close()
        super().close()


def no_redirects(url: str, headers: dict[str, str], kwargs: dict[str, Any]) -> tuple[str, dict, dict]:
    """requests-oauthlib `access_token_request` hook: the token request (it carries the client
    secret) is never re-sent to wherever a redirect points."""
    return url, headers, {**kwargs, "allow_redirects": False}


def redirect_target(response: requests.Response) -> str:
    """Where a 3xx answer points, for a message: host and port only (never a path or query, which
    may carry anything), or a note that the Location is missing, relative or unreadable."""
    location = response.headers.get("Location")
    if not location:
        return "without a Location"
    try:
        parts = urlsplit(location.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return "to an unreadable Location"
    if not parts.netloc:
        return "to another path on the same host"
    if not host or len(host) > 253 or not all(c.isascii() and (c.isalnum() or c in ".-_:") for c in host):
        return "to an unreadable Location"
    return f"to {host}" + (f":{port}" if port else "")


def _read_body(response: requests.Response, max_bytes: int) -> None:
    declared = response.headers.get("Content-Length", "").strip()
    # ASCII digits only, and few of them: int() refuses "²" and numbers of thousands of digits.
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > max_bytes):
        response.close()
        raise ResponseTooLarge(f"the answer declares a length above the limit of {_size(max_bytes)} "
                               "(max_response_bytes)", response=response)
    parts, size = [], 0
    for chunk in response.iter_content(_CHUNK):  # decoded: a compressed bomb counts at its real size
        size += len(chunk)
        if size > max_bytes:
            response.close()
            raise ResponseTooLarge(f"the answer is larger than the limit of {_size(max_bytes)} "
                                   "(max_response_bytes)", response=response)
        parts.append(chunk)
    response._content = b"".join(parts)
    response._content_consumed = True


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count and count % (1 << 20) == 0 else f"{count} bytes"


class _Watchdog:
    """Expires the deadlines of one adapter, from one thread that runs while any is pending."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._wake = threading.Condition()
        self._pending: deque[_Deadline] = deque()  # in the order they fall due
        self._running = False

    def deadline(self) -> _Deadline:
        """The deadline of an exchange that starts now."""
        with self._wake:
            deadline = _Deadline(self.seconds, time.monotonic() + self.seconds)
            self._drop_finished()  # finished exchanges leave now, unless an older one is still running
            self._pending.append(deadline)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="api-request-deadlines", daemon=True).start()
            # No notify: the thread sleeps until the first deadline, which is not this one.
        return deadline

    def close(self) -> None:
        with self._wake:
            self._pending.clear()
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                self._drop_finished()
                if not self._pending:
                    self._running = False  # idle; the next exchange starts a new thread
                    return
                wait = self._pending[0].due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                else:
                    self._pending.popleft().expire()

    def _drop_finished(self) -> None:
        while self._pending and self._pending[0].done:
            self._pending.popleft()


class _Deadline:
    """The deadline of one exchange: once it passes, shut down the sockets it watches."""

    def __init__(self, seconds: float, due: float):
        self.seconds = seconds
        self.due = due
        self.done = False
        self._lock = threading.Lock()
        self._watched: set[_WatchedConnection] = set()
        self._orphans: list[Any] = []  # sockets of closed connections that an answer may still be read from
        self._expired = False

    def watch(self, conn: _WatchedConnection) -> None:
        with self._lock:
            if self.done:
                return
            conn.deadline = self
            self._watched.add(conn)
            if self._expired:  # it fired while the socket did not exist yet (connecting)
                _shut_down(conn.sock)

    def closing(self, conn: _WatchedConnection) -> None:
        """The connection is about to close its socket. http.client does so as soon as the headers
        say `Connection: close`, while the answer is still read from the socket: keep watching it."""
        with self._lock:
            if conn in self._watched and conn.sock is not None:
                self._watched.discard(conn)
                self._orphans.append(conn.sock)

    def finish(self) -> bool:
        """End the exchange; True when the deadline had passed (the answer may be cut short)."""
        with self._lock:
            self.done = True
            self._watched.clear()
            self._orphans.clear()
        return self._expired

    def exceeded(self, request: requests.PreparedRequest) -> DeadlineExceeded:
        return DeadlineExceeded(f"no complete answer within the deadline of {self.seconds:g} s "
                                "(request_deadline)", request=request)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self._expired = True
            for sock in [conn.sock for conn in self._watched] + self._orphans:
                _shut_down(sock)


def _shut_down(sock: Any) -> None:
    # urllib3's SSLTransport (TLS inside a TLS proxy) wraps the real socket as `.socket`.
    while sock is not None and not isinstance(sock, socket.socket):
        sock = getattr(sock, "socket", None)
    if sock is None:
        return
    try:
        # The base class's method: an SSLSocket's own shutdown would tear down TLS state that the
        # reading thread is using; on the descriptor, the blocked read simply sees the end.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # closed for good (a Python socket then has no descriptor) or never connected
        pass


def _watch(conn: _WatchedConnection) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(conn)


class _WatchedConnection(HTTPConnection):
    """A connection that puts itself under the current exchange's deadline whenever it is used."""

    deadline: _Deadline | None = None

    def connect(self) -> None:
        _watch(self)  # a proxy's CONNECT answer is read here
        super().connect()
        _watch(self)  # the deadline may have passed while the socket did not exist yet

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self)  # a connection reused from the pool is already connected
        super().request(*args, **kwargs)

    def close(self) -> None:
        if self.deadline is not None:
            self.deadline.closing(self)
        super().close()


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _watch_pools(manager: poolmanager.PoolManager) -> None:
    # Only the stock pools are swapped: a SOCKS proxy manager brings its own (and so goes unwatched,
    # bounded by the per-read timeout only).
    if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
