"""The HTTP client against a hostile or broken server (DESIGN §8): redirects on the token request
and on writes are not followed, the bearer token never follows a read's redirect to another host,
listings and answers are bounded, and a trickled answer ends at the request deadline.

Real servers on free loopback ports (`http.server`), scripted per test: a route writes whatever
bytes it likes, as slowly as it likes, and every server records what it received.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import json
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from reconciler.api import errors
from reconciler.api.client import BatchClient
from reconciler.api.session import ApiSession
from reconciler.settings import ApiSettings, InvalidSettings

SECRET = "s3cr3t-never-redirected"
DELIVERY_SECRET = "AWS-SECRET-never-reposted"
TOKEN = "tok-hostile"
DEADLINE = 0.5
MARGIN = 1.0  # thread start-up and a loaded CI machine; far below any trickle's natural end
CAP = 1024 * 1024
PROCESS = "/api/v2/batch/process"


@dataclass(frozen=True)
class Received:
    method: str
    target: str  # as on the request line: absolute-form when it came through a proxy
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[["Handler"], None]


class HostileServer(ThreadingHTTPServer):
    """Serves scripted routes and records every request; `stop` ends any route still writing."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1"):
        super().__init__((host, 0), Handler)
        self.url = f"http://{host}:{self.server_address[1]}"
        self.routes: dict[tuple[str, str], Route] = {("POST", "/token"): give_token}
        self.received: list[Received] = []
        self.sent = 0  # body bytes written by the streaming routes
        self.stop = threading.Event()

    def route(self, method: str, path: str, answer: Route) -> None:
        self.routes[(method, path)] = answer

    def requests_to(self, method: str, path: str) -> list[Received]:
        return [r for r in self.received if (r.method, r.path) == (method, path)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HostileServer

    def log_message(self, *args: object) -> None:
        pass

    def serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        self.server.received.append(Received(self.command, self.path, path, dict(self.headers), body))
        answer = self.server.routes.get((self.command, path), not_found)
        try:
            answer(self)
        except OSError:  # a broken pipe, a reset, TLS's EOF: the client gave up on us, as the test wants
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = serve

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        head = f"HTTP/1.1 {status} Whatever\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
        self.wfile.write(head.encode() + b"\r\n" + body)

    def send_json(self, status: int, data: object) -> None:
        self.send(status, json.dumps(data).encode(), Content_Type="application/json")

    def trickle(self, data: bytes) -> None:
        """One byte at a time, 20 ms apart, until all is written, the client leaves or the test ends."""
        for byte in data:
            if self.server.stop.wait(0.02):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def stream(self, head: bytes, chunks: Iterator[bytes]) -> None:
        self.wfile.write(head)
        for chunk in chunks:
            if self.server.stop.is_set():
                return
            self.wfile.write(chunk)
            self.server.sent += len(chunk)


def give_token(h: Handler) -> None:
    h.send_json(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})


def not_found(h: Handler) -> None:
    h.send_json(404, {"error": {"status": 404, "reason": "Not Found", "message": "no route", "code": "X"}})


def task(task_id: str) -> dict:
    return {"id": task_id, "request": {"description": f"job [reconciler:{task_id}]"}, "domainAccountId": "acc",
            "status": "CREATED", "completionPercentage": 0}


def redirect(status: int, to: str) -> Route:
    return lambda h: h.send(status, Location=to)


@pytest.fixture
def server() -> Iterator[HostileServer]:
    yield from _running(HostileServer())


@pytest.fixture
def other() -> Iterator[HostileServer]:
    """A second server under another host name: where redirects point, recording what arrives."""
    yield from _running(HostileServer("localhost"))


def _running(srv: HostileServer) -> Iterator[HostileServer]:
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture
def client(server) -> Iterator[Callable[..., BatchClient]]:
    made: list[BatchClient] = []
    sleeps: list[float] = []

    def make(**overrides: object) -> BatchClient:
        values = {"base_url": server.url, "token_url": server.url + "/token", "request_deadline": DEADLINE,
                  "max_response_bytes": CAP, "max_pages": 5, **overrides}
        # A recorded sleep: any retry would show up here, and none of these failures is retried.
        session = ApiSession(ApiSettings("client-1", SECRET, **values), sleep=sleeps.append)  # type: ignore[arg-type]
        made.append(BatchClient(session=session))
        return made[-1]

    yield make
    for c in made:
        c.close()
    assert sleeps == []


def raised(call: Callable[[], object], cls: type[errors.ApiError]) -> errors.ApiError:
    with pytest.raises(cls) as info:
        call()
    e = info.value
    assert "\n" not in e.message and SECRET not in e.message and TOKEN not in e.message
    return e


# -- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307, 308])
def test_token_request_is_not_redirected(server, other, client, status):
    server.route("POST", "/token", redirect(status, f"{other.url}/steal?client_secret=x&q=private"))
    e = raised(lambda: client().v2.get("t-1"), errors.ApiError)
    assert e.status == status and not isinstance(e, errors.AuthError)
    port = urlsplit(other.url).port
    assert e.message == (f"POST /token: the service answered a redirect ({status} to localhost:{port}); "
                         "redirects are not followed for the token request or writes")
    assert "private" not in e.message and "SH_TOKEN_URL" in e.hint
    assert other.received == []  # the secret never went to the redirect's target
    assert len(server.requests_to("POST", "/token")) == 1 and server.requests_to("GET", f"{PROCESS}/t-1") == []


WRITES = {
    "create": ("POST", PROCESS, lambda c: c.v2.create({"output": {"delivery": {"s3": {
        "url": "s3://bucket/out", "accessKey": "AKIA", "secretAccessKey": DELIVERY_SECRET}}}})),
    "update": ("PUT", f"{PROCESS}/t-1", lambda c: c.v2.update_description("t-1", "new")),
    "start": ("POST", f"{PROCESS}/t-1/start", lambda c: c.v2.start("t-1")),
    "delete": ("DELETE", "/api/v1/batch/process/r-1", lambda c: c.v1.delete("r-1")),
}


@pytest.mark.parametrize("write", WRITES)
@pytest.mark.parametrize("status", [307, 308])
def test_writes_are_not_redirected(server, other, client, write, status):
    method, path, call = WRITES[write]
    server.route(method, path, redirect(status, other.url + path))
    e = raised(lambda: call(client()), errors.ApiError)
    assert not isinstance(e, errors.CreateOutcomeUnknown) and e.status == status
    assert f"answered a redirect ({status} to localhost:" in e.message and "SH_BASE_URL" in e.hint
    assert len(server.requests_to(method, path)) == 1  # not retried
    assert other.received == []  # the body (with the delivery's secret) was not re-sent


def test_redirect_without_location_on_a_write_says_so(server, client):
    server.route("POST", PROCESS, lambda h: h.send(307))
    e = raised(lambda: client().v2.create({"description": "x"}), errors.ApiError)
    assert "(307 without a Location)" in e.message


def test_read_follows_a_redirect_but_the_token_stays_home(server, other, client):
    server.route("GET", f"{PROCESS}/t-1", redirect(302, f"{other.url}{PROCESS}/t-1"))
    other.route("GET", f"{PROCESS}/t-1", lambda h: h.send_json(200, task("t-1")))
    assert client().v2.get("t-1").id == "t-1"
    [asked] = server.requests_to("GET", f"{PROCESS}/t-1")
    [followed] = other.received
    assert asked.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in followed.headers and TOKEN not in repr(followed)


# -- listings ----------------------------------------------------------------------------------


def test_listing_that_never_ends_stops_at_max_pages(server, client):
    pages = iter(range(10 ** 6))

    def endless(h: Handler) -> None:
        n = next(pages)
        h.send_json(200, {"data": [task(f"t-{n}")], "links": {"nextToken": f"page-{n + 1}"}})

    server.route("GET", PROCESS, endless)
    listing = client(max_pages=5).v2.iter_tasks()
    e = raised(lambda: list(listing), errors.ApiUnavailable)
    assert e.message == ("GET /api/v2/batch/process: the listing did not end within 5 pages (max_pages): "
                         "every page names a next one")
    assert len(server.requests_to("GET", PROCESS)) == 5


LIST_DEADLINE = 1.0
PAGE_DELAY = 0.1  # each page well within its own deadline: only the listing's overall one can end it
PATIENCE = 15.0  # a generous upper bound on a loaded machine; the listing would otherwise run for hours


def slow_endless_pages(h: Handler) -> None:
    """Every page names a next one, after a short pause (cut short when the test ends)."""
    n = len(h.server.requests_to("GET", PROCESS))
    if h.server.stop.wait(PAGE_DELAY):
        return
    h.send_json(200, {"data": [task(f"t-{n}")], "links": {"nextToken": f"page-{n + 1}"}})


def test_a_slow_endless_listing_ends_at_the_listing_deadline(server, client):
    server.route("GET", PROCESS, slow_endless_pages)
    listing = client(max_pages=10_000, list_deadline=LIST_DEADLINE).v2.iter_tasks()
    started = time.monotonic()
    e = raised(lambda: list(listing), errors.ApiUnavailable)
    elapsed = time.monotonic() - started
    pages = len(server.requests_to("GET", PROCESS))
    assert LIST_DEADLINE <= elapsed < PATIENCE and 2 <= pages < PATIENCE / PAGE_DELAY
    assert e.message == (f"GET /api/v2/batch/process: the listing did not end within 1 s (list_deadline): "
                         f"{pages} page(s) read, and each names a next one")
    assert "RECONCILER_LIST_TIMEOUT" in e.hint


def test_the_listing_deadline_is_measured_on_the_injected_clock(server):
    pages = iter(range(10 ** 6))
    server.route("GET", PROCESS, lambda h: h.send_json(200, {"data": [task("t")], "links": {"nextToken": f"p-{next(pages)}"}}))
    now = [0.0]

    def clock() -> float:
        now[0] += 100.0  # a hundred seconds per look: the deadline of 250 s passes on the third page
        return now[0]

    settings = ApiSettings("client-1", SECRET, base_url=server.url, token_url=server.url + "/token", list_deadline=250)
    with BatchClient(session=ApiSession(settings), clock=clock) as api:
        e = raised(lambda: list(api.v2.iter_tasks()), errors.ApiUnavailable)
    assert "within 250 s (list_deadline): 3 page(s) read" in e.message
    assert len(server.requests_to("GET", PROCESS)) == 3


def test_plan_against_a_slow_endless_listing_exits_1_with_one_line(server, run_cli, tmp_path, monkeypatch):
    from tests.conftest import example_job

    for name in ("SH_DEPLOYMENT", "SH_PROFILE", "RECONCILER_STATE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"SH_CLIENT_ID": "client-1", "SH_CLIENT_SECRET": SECRET, "SH_BASE_URL": server.url,
                        "SH_TOKEN_URL": server.url + "/token", "RECONCILER_LIST_TIMEOUT": "1s",
                        "OAUTHLIB_INSECURE_TRANSPORT": "1", "NO_COLOR": "1"}.items():
        monkeypatch.setenv(name, value)
    server.route("GET", PROCESS, slow_endless_pages)
    server.route("GET", "/api/v1/batch/process", lambda h: h.send_json(200, {"data": [], "links": {}}))
    example_job(tmp_path)
    (tmp_path / "state").mkdir()
    started = time.monotonic()
    code, out, err = run_cli("plan", "--state", str(tmp_path / "state" / "state.json"))
    assert time.monotonic() - started < PATIENCE
    errors_shown = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors_shown) == 1 and "Traceback" not in err and len(err.splitlines()) <= 2, err
    assert "the listing did not end within 1 s (list_deadline)" in errors_shown[0] and SECRET not in err
    assert not (tmp_path / "state" / "state.json").exists()  # a plan writes nothing


@pytest.mark.parametrize("value", ["0", "0s", "soon", "-1s"])
def test_a_nonsense_list_timeout_is_refused(value):
    from reconciler.settings import api_settings

    with pytest.raises(InvalidSettings, match="RECONCILER_LIST_TIMEOUT"):
        api_settings({"SH_CLIENT_ID": "id", "SH_CLIENT_SECRET": "s", "RECONCILER_LIST_TIMEOUT": value})


def test_the_list_timeout_is_read_from_the_environment_and_defaults_to_ten_minutes():
    from reconciler.settings import api_settings

    credentials = {"SH_CLIENT_ID": "id", "SH_CLIENT_SECRET": "s"}
    assert api_settings(credentials).list_deadline == 600.0
    assert api_settings({**credentials, "RECONCILER_LIST_TIMEOUT": " 1m30s "}).list_deadline == 90.0
    assert api_settings({**credentials, "RECONCILER_LIST_TIMEOUT": "1m"}, list_deadline=5).list_deadline == 5


# -- the deadline ------------------------------------------------------------------------------


HEAD_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def trickled_headers(h: Handler) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\n")
    h.trickle(b"X-Slow: " + b"a" * 4000 + b"\r\n\r\n{}")


def trickled_body(h: Handler) -> None:
    body = json.dumps(task("t-1")).encode() + b" " * 4000
    h.wfile.write(HEAD_OK + f"Content-Length: {len(body)}\r\n\r\n".encode())
    h.trickle(body)


def trickled_until_close(h: Handler) -> None:
    # No length and no chunking: the body ends when the connection does, so a cut socket would
    # look like a complete (short) answer were the deadline not checked after reading.
    h.close_connection = True
    h.wfile.write(HEAD_OK + b"Connection: close\r\n\r\n")
    h.trickle(json.dumps(task("t-1")).encode() + b" " * 4000)


CALLS = {
    "get": ("GET", f"{PROCESS}/t-1", lambda c: c.v2.get("t-1"), errors.ApiUnavailable),
    "create": ("POST", PROCESS, lambda c: c.v2.create({"description": "x"}), errors.CreateOutcomeUnknown),
    "token": ("POST", "/token", lambda c: c.v2.get("t-1"), errors.ApiUnavailable),
}


@pytest.mark.parametrize("where, answer", [
    ("get", trickled_headers), ("get", trickled_body), ("get", trickled_until_close),
    ("create", trickled_body), ("token", trickled_headers),
], ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_trickled_answer_ends_at_the_deadline(server, client, where, answer):
    method, path, call, cls = CALLS[where]
    server.route(method, path, answer)
    api = client()
    started = time.monotonic()
    e = raised(lambda: call(api), cls)
    elapsed = time.monotonic() - started
    assert DEADLINE <= elapsed < DEADLINE + MARGIN
    assert f"no complete answer within the deadline of {DEADLINE:g} s (request_deadline)" in e.message
    assert len(server.requests_to(method, path)) == 1  # not retried (and a create is never re-sent)
    server.route(method, path, give_token if where == "token" else lambda h: h.send_json(200, task("t-2")))
    server.route("GET", f"{PROCESS}/t-1", lambda h: h.send_json(200, task("t-2")))
    call(api)  # the cut connection is not reused: the next call works


def test_deadline_holds_through_a_forwarding_proxy(server, client, monkeypatch):
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", server.url)
    server.route("GET", f"{PROCESS}/t-1", trickled_body)
    unreachable = "http://127.0.0.1:9"  # the discard port: only the proxy answers
    api = client(base_url=unreachable, token_url=unreachable + "/token")
    started = time.monotonic()
    raised(lambda: api.v2.get("t-1"), errors.ApiUnavailable)
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert [r.target for r in server.received] == [unreachable + "/token", f"{unreachable}{PROCESS}/t-1"]


@pytest.fixture
def tls_server(tmp_path, monkeypatch) -> Iterator[HostileServer]:
    """The hostile server behind TLS, with a certificate for 127.0.0.1 that the client trusts."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "cert.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    srv = HostileServer()
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    srv.url = srv.url.replace("http://", "https://")
    yield from _running(srv)


def test_deadline_cuts_a_tls_connection_too(tls_server, client):
    tls_server.route("GET", f"{PROCESS}/t-1", trickled_body)
    api = client(base_url=tls_server.url, token_url=tls_server.url + "/token")
    started = time.monotonic()
    e = raised(lambda: api.v2.get("t-1"), errors.ApiUnavailable)
    assert DEADLINE <= time.monotonic() - started < DEADLINE + MARGIN and "deadline" in e.message
    tls_server.route("GET", f"{PROCESS}/t-1", lambda h: h.send_json(200, task("t-2")))
    assert api.v2.get("t-1").id == "t-2"


# -- the size cap ------------------------------------------------------------------------------


def endless_chunks(size: int = 64 * 1024) -> Iterator[bytes]:
    block = b"%x\r\n" % size + b" " * size + b"\r\n"
    for _ in range(4096):  # 256 MiB: far more than any cap here, and the test's end stops it sooner
        yield block


def declared_too_large(h: Handler) -> None:
    h.stream(HEAD_OK + b"Content-Length: %d\r\n\r\n" % (1 << 30), (b" " * 65536 for _ in range(16384)))


def declared_absurdly(h: Handler) -> None:
    h.stream(HEAD_OK + b"Content-Length: %s\r\n\r\n" % (b"9" * 5000), (b" " * 65536 for _ in range(16384)))


def chunked_too_large(h: Handler) -> None:
    h.stream(HEAD_OK + b"Transfer-Encoding: chunked\r\n\r\n", endless_chunks())


@functools.cache
def bomb() -> bytes:
    """16 MiB of zeros in 16 KB of gzip."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
    block = bytes(1 << 20)
    return b"".join(packer.compress(block) for _ in range(16)) + packer.flush()


def gzip_bomb(h: Handler) -> None:
    h.send(200, bomb(), Content_Type="application/json", Content_Encoding="gzip")


@pytest.mark.parametrize("where, answer", [
    ("get", declared_too_large), ("get", declared_absurdly), ("get", chunked_too_large), ("get", gzip_bomb),
    ("create", chunked_too_large), ("token", declared_too_large),
], ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_oversized_answer_is_refused(server, client, where, answer):
    method, path, call, cls = CALLS[where]
    server.route(method, path, answer)
    api = client(request_deadline=30.0)  # a deadline hit would be a failure here, not the point
    tracemalloc.start()
    try:
        e = raised(lambda: call(api), cls)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "the limit of 1 MiB (max_response_bytes)" in e.message
    assert ("declares a length" in e.message) == answer.__name__.startswith("declared")  # refused unread
    assert peak < 8 * CAP  # the body was never held whole (each of these is 16 MiB or more)
    assert server.sent < 32 * CAP  # the client stopped reading: only socket buffers' worth went out
    assert len(server.requests_to(method, path)) == 1


def test_oversized_error_answer_is_refused_too(server, client):
    server.route("GET", f"{PROCESS}/t-1", lambda h: h.stream(
        b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n", endless_chunks()))
    e = raised(lambda: client().v2.get("t-1"), errors.ApiUnavailable)
    assert "max_response_bytes" in e.message


@pytest.mark.parametrize("name, value", [("request_deadline", 0), ("max_response_bytes", 0), ("max_pages", 0),
                                         ("list_deadline", 0)])
def test_bounds_must_be_positive(name, value):
    with pytest.raises(InvalidSettings, match=name):
        ApiSettings("id", "secret", **{name: value})
