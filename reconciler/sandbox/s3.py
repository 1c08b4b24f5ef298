"""The sandbox's S3: moto's server on its own loopback port, with writes serialised.

moto checks `If-Match`/`If-None-Match` and then writes with nothing in between to stop a second
writer, so two concurrent conditional PUTs can both succeed. The lease and the lockfile depend on
exactly that guarantee, so every mutating request runs under one lock here.

With `ignore_conditions` the server plays an S3-compatible store that accepts `If-Match` and
`If-None-Match` on writes without checking them: the headers are dropped before moto sees them, so
every conditional write and delete succeeds (for tests of the reconciler's capability probe).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import make_server

_MUTATING = frozenset({"PUT", "POST", "DELETE", "PATCH"})
# How often a serving loop looks for a shutdown: werkzeug's 0.5 s default made every stop wait that long.
SHUTDOWN_POLL = 0.05


class SerialisedWrites:
    """WSGI middleware: one mutating request at a time, its whole response produced under the lock."""

    def __init__(self, app: Any):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") not in _MUTATING:
            return self.app(environ, start_response)
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()


class IgnoredConditions:
    """WSGI middleware: writes lose their `If-Match`/`If-None-Match` headers, as on a store that ignores them."""

    def __init__(self, app: Any):
        self.app = app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") in _MUTATING:
            environ = {k: v for k, v in environ.items() if k not in ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH")}
        return self.app(environ, start_response)


class S3Server:
    """moto's S3 on `host:port` (0 = a free port), in a thread of this process.

    `write_latency` (a fault for race tests) sleeps inside every object write, after moto's
    precondition check: it widens the window in which unserialised writers would both win.
    `serialise=False` exists only so a test can show that window without the lock.
    `ignore_conditions` makes it a store that does not check conditional writes at all.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, write_latency: float = 0.0, serialise: bool = True,
                 ignore_conditions: bool = False):
        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app

        if write_latency > 0:
            _slow_down_writes(write_latency)
        # moto's S3 application itself. moto's usual front (DomainDispatcherApplication) works out the
        # service of every request from its host, headers and body, listing moto's ~200 package folders
        # each time: 3.4 ms of this server's CPU per request against 1.9 ms here, which serves S3 only.
        app: Callable[[dict[str, Any], Any], Any] = create_backend_app("s3")  # WSGI
        if serialise:
            app = SerialisedWrites(app)
        if ignore_conditions:
            app = IgnoredConditions(app)
        self._server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                                        name="sandbox-s3", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an IP address: bytes only name a Unix socket
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _slow_down_writes(seconds: float) -> None:
    import time

    from moto.s3.models import S3Backend

    for name in ("put_object", "delete_object"):
        original = getattr(S3Backend, name)
        if getattr(original, "_sandbox_delayed", False):
            continue

        def delayed(self, *args, _original=original, **kwargs):
            time.sleep(seconds)
            return _original(self, *args, **kwargs)

        delayed._sandbox_delayed = True  # type: ignore[attr-defined]  # a mark on the function, read above
        setattr(S3Backend, name, delayed)
