"""Secrets hidden in every form a server may echo them in (DESIGN §8): as written, URL-encoded (a
form body: the token request's client secret), JSON-escaped, and with hex escapes in either case.

The unit tests drive `reconciler.redaction`; the last ones run the real CLI against a token
endpoint (http.server on a free loopback port) that answers with the form body it was sent."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, quote_plus

import pytest

from reconciler import redaction
from reconciler.redaction import MAX_TEXT, SENSITIVE, Secrets, forms, from_service

SECRET = 'Sec/ret+Key=99&x"\\é'  # every character class a form body or JSON escapes


def lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def every_form(value: str) -> list[str]:
    """The forms of `value` a server may echo, made here independently of `redaction.forms`."""
    plus, percent = quote_plus(value), quote(value, safe="")
    escaped = json.dumps(value)[1:-1]
    return [value, plus, percent, lower_hex(plus), lower_hex(percent), escaped, escaped.replace("\\u00e9", "\\u00E9"),
            json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(plus)[1:-1]]


def test_forms_cover_the_url_and_json_encodings_with_hex_in_either_case():
    made = forms(SECRET)
    assert "Sec%2Fret%2BKey%3D99%26x%22%5C%C3%A9" in made  # quote_plus, as a form body carries it
    assert "Sec%2fret%2bKey%3d99%26x%22%5c%c3%a9" in made  # as some servers echo it
    assert 'Sec/ret+Key=99&x\\"\\\\\\u00e9' in made and 'Sec/ret+Key=99&x\\"\\\\\\u00E9' in made
    assert 'Sec/ret+Key=99&x\\"\\\\é' in made
    assert {"a+b+c", "a%20b%20c"} <= forms("a b c")  # spaces: + in a form, %20 in a path


@pytest.mark.parametrize("form", every_form(SECRET))
def test_scrub_hides_each_form(form):
    secrets = Secrets()
    secrets.add([SECRET])
    text = f"client_id=abc&client_secret={form}&grant_type=client_credentials"
    scrubbed = secrets.scrub(text)
    assert form not in scrubbed and "client_secret=(sensitive)&grant_type" in scrubbed


def test_short_values_are_not_secrets_in_any_form():
    secrets = Secrets()
    secrets.add(["a/b"])  # shorter than MIN_SECRET, though its encoded form is longer
    assert secrets.scrub("path a/b and a%2Fb") == "path a/b and a%2Fb"


def test_the_environments_secrets_are_hidden_in_every_form(monkeypatch):
    monkeypatch.setenv("SH_CLIENT_SECRET", SECRET)
    secrets = Secrets()  # nothing added: the environment alone
    for form in every_form(SECRET):
        assert secrets.scrub(f"<{form}>") == f"<{SENSITIVE}>", form
    monkeypatch.setenv("SH_CLIENT_SECRET", "another/secret")  # read again when it changes
    assert secrets.scrub("another%2Fsecret " + quote_plus(SECRET)) == f"{SENSITIVE} {quote_plus(SECRET)}"


def test_a_text_cut_inside_a_secret_shows_none_of_it():
    redaction.remember([SECRET])
    encoded = quote_plus(SECRET)
    long = "x" * (MAX_TEXT * 4 - 10) + encoded + "y" * 100  # the bound falls inside the secret
    assert encoded[:10] not in from_service(long)
    snippet = "client_secret=" + encoded[:12] + "…"  # a caller cut the first line before us
    assert from_service(snippet) == f"client_secret={SENSITIVE}…"
    assert from_service("an ordinary message…") == "an ordinary message…"


# ---------------------------------------------------------------- a real token endpoint

class EchoingTokenEndpoint(BaseHTTPRequestHandler):
    """A token endpoint that refuses every client and quotes the form body it got: as text, or
    inside a JSON error of either shape (the form as sent, or decoded and JSON-escaped), even
    inside a 200 answer that oauthlib reads as an error."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        decoded = {k: v[0] for k, v in parse_qs(form).items()}
        if self.path == "/text":
            self._answer(401, "text/plain", f"refused: {form}".encode())
        elif self.path in ("/oauth-json", "/oauth-json-200"):  # a 200 goes through oauthlib's own error
            document = {"error": "invalid_client", "error_description": f"unknown client in {form}"}
            self._answer(200 if self.path.endswith("200") else 400, "application/json", json.dumps(document).encode())
        else:  # the service's own error shape, with the decoded fields JSON-escaped
            document = {"error": {"status": 400, "reason": "Bad Request", "message": f"bad credentials {json.dumps(decoded)}",
                                  "code": "COMMON_BAD_PAYLOAD"}}
            self._answer(400, "application/json", json.dumps(document).encode())

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def token_endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingTokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.parametrize(("route", "said"), [
    ("/text", "the token endpoint answered 401"),
    ("/oauth-json", "the token endpoint answered 400"),
    ("/oauth-json-200", "the token endpoint refused: invalid_client"),
    ("/service-json", "bad credentials"),
])
def test_a_token_endpoint_that_echoes_the_form_never_shows_the_secret(token_endpoint, route, said, run_cli,
                                                                      monkeypatch):
    from reconciler.settings import INSECURE_TRANSPORT_VARIABLE

    monkeypatch.delenv(INSECURE_TRANSPORT_VARIABLE, raising=False)  # set by the run for loopback; undone after
    for key, value in {"SH_BASE_URL": f"{token_endpoint}/api", "SH_TOKEN_URL": token_endpoint + route,
                       "SH_CLIENT_ID": "client-id-1", "SH_CLIENT_SECRET": SECRET, "NO_COLOR": "1"}.items():
        monkeypatch.setenv(key, value)
    code, out, err = run_cli("grids")
    shown = out + err
    assert code != 0 and said in shown, shown
    assert "client-id-1" in shown or route == "/service-json"  # the echo is there: only the secret is hidden
    for form in every_form(SECRET):
        assert form not in shown, (form, shown)
    assert SENSITIVE in shown
