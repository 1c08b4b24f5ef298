"""A token URL that is no token endpoint (404, 405, a web page) is reported as a wrong token URL,
naming where it is set and the realm the deployment expects; a token endpoint that refuses the
client (400/401 invalid_client) keeps the hint about the client's id and secret. Against a real
HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from reconciler.settings import DEPLOYMENTS, INSECURE_TRANSPORT_VARIABLE

SECRET = "secret-of-the-client-4711"
PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Sign in</body></html>\n"
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "/404-text": (404, "text/plain", b"Not Found"),
    "/404-json": (404, "application/json", b'{"error": {"status": 404, "reason": "Not Found"}}'),
    "/405": (405, "text/plain", b"Method Not Allowed"),
    "/page-200": (200, "text/html; charset=utf-8", PAGE),
    "/page-200-untyped": (200, "application/octet-stream", PAGE),
    "/page-401": (401, "text/html", PAGE),
    "/invalid-client-401": (401, "application/json", b'{"error": "invalid_client", "error_description": "Invalid client"}'),
    "/invalid-client-400": (400, "application/json", b'{"error": "invalid_client"}'),
}


class TokenUrl(BaseHTTPRequestHandler):
    """Answers POST ROUTE as ANSWERS says, and 404 (http.server's own HTML page) anywhere else."""

    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        TokenUrl.requests.append(self.path)
        if self.path not in ANSWERS:
            self.send_error(404)
            return
        status, kind, body = ANSWERS[self.path]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), TokenUrl)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    TokenUrl.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def grids(run_cli, monkeypatch, base_url: str, token_url: str) -> tuple[int, str]:
    monkeypatch.delenv(INSECURE_TRANSPORT_VARIABLE, raising=False)  # set by the run for loopback; undone after
    for variable in ("SH_DEPLOYMENT", "SH_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    for key, value in {"SH_BASE_URL": base_url, "SH_TOKEN_URL": token_url, "SH_CLIENT_ID": "client-id-1",
                       "SH_CLIENT_SECRET": SECRET, "NO_COLOR": "1"}.items():
        monkeypatch.setenv(key, value)
    code, out, err = run_cli("grids")
    assert SECRET not in out + err
    return code, out + err


@pytest.mark.parametrize("route", ["/404-text", "/404-json", "/no-such-path", "/405", "/page-200", "/page-200-untyped",
                                   "/page-401"])
def test_no_token_endpoint_there_says_the_token_url_is_wrong(route, server, run_cli, monkeypatch):
    code, shown = grids(run_cli, monkeypatch, f"{server}/api", server + route)
    assert code == 1
    assert f"POST {route}: the token endpoint answered " in shown
    assert ("a web page, not an OAuth answer" in shown) == ("page" in route or route == "/no-such-path")
    assert f"the token URL ({server}{route}) is no OAuth token endpoint: check SH_TOKEN_URL, or sh_token_url" in shown
    assert "SH_CLIENT_SECRET" not in shown  # not the credentials' fault
    assert TokenUrl.requests == [route]  # not retried


def test_the_hint_names_the_realm_of_the_deployment_the_base_url_names(server, run_cli, monkeypatch):
    cdse = DEPLOYMENTS["cdse"]
    code, shown = grids(run_cli, monkeypatch, cdse.base_url, f"{server}/auth/realms/main/token")
    assert code == 1 and f"deployment 'cdse' ({cdse.base_url}) issues its tokens at {cdse.token_url}" in shown
    code, shown = grids(run_cli, monkeypatch, f"{server}/api", f"{server}/oauth/token")
    assert code == 1 and f"eu and us-west: {DEPLOYMENTS['eu'].token_url}; cdse: {cdse.token_url}" in shown


@pytest.mark.parametrize("route", ["/invalid-client-401", "/invalid-client-400"])
def test_a_refused_client_keeps_the_credentials_hint(route, server, run_cli, monkeypatch):
    code, shown = grids(run_cli, monkeypatch, f"{server}/api", server + route)
    assert code == 1 and "[invalid_client]" in shown
    assert "check SH_CLIENT_ID and SH_CLIENT_SECRET" in shown and "no OAuth token endpoint" not in shown


def test_the_error_is_a_wrong_token_url_for_callers(server, monkeypatch):
    from reconciler.api import errors
    from reconciler.api.client import BatchClient
    from reconciler.settings import api_settings

    monkeypatch.delenv(INSECURE_TRANSPORT_VARIABLE, raising=False)

    settings = api_settings({"SH_CLIENT_ID": "i", "SH_CLIENT_SECRET": SECRET, "SH_BASE_URL": f"{server}/api",
                             "SH_TOKEN_URL": f"{server}/405"})
    with BatchClient(settings) as client, pytest.raises(errors.WrongTokenUrl) as info:
        client.v2.tiling_grids()
    assert isinstance(info.value, errors.AuthError) and info.value.status == 405
    assert json.dumps(info.value.message).count("\\n") == 0
