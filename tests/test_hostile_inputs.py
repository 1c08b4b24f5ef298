"""Untrusted input, end to end (DESIGN §8): a secret whose reference was removed, a service that
echoes secrets in its errors, a tampered saved plan, a planted load cache. Each ends in a
one-line error or a safe result; no secret value reaches any output, file or lockfile, and the
sandbox holds no unexpected job. (Paths are in test_containment.py, the HTTP client's bounds in
test_http_hostile.py, the cache files' own hardening in test_load_cache.py.)"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler.api.client import BatchClient
from reconciler.api.jobs import JobsApi
from reconciler.engine.identity import owner
from reconciler.operations.planfile import PlanKeys
from reconciler.settings import api_settings, plan_key
from tests.conftest import EXAMPLES, copy_evalscripts

SECRET = "S3cr3t-Value-That-Must-Not-Leak-7781"
# Ends up in a live job's description (a description is no secret): a value of its own, so that a later
# test on the shared sandbox, which looks for SECRET in everything shown (unmanaged jobs too), never finds it.
DESCRIBED = "D3scr1bed-Value-Of-The-Update-Test-5512"


def one_job(workspace: Path, name: str, description: str = "Max NDVI", extra: str = "") -> Path:
    """The workspace holds one small v2 job (GeoPackage input: the sandbox keeps it at `created`)."""
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()
    text = (EXAMPLES / "corsica-geopackage.yaml").read_text().replace("name: corsica-geopackage", f"name: {name}")
    text = text.replace("description: Max NDVI over Corsica fields from a GeoPackage", f"description: {description}")
    assert f"description: {description}" in text
    path = workspace / "manifests" / "job.yaml"
    path.write_text(text + extra)
    return path


def everything_written(workspace: Path, sandbox) -> str:
    """Every file in the workspace and every object of the state bucket, as one text."""
    texts = [p.read_text(errors="replace") for p in workspace.rglob("*") if p.is_file() and p.suffix != ".js"]
    s3 = sandbox.s3()
    for item in s3.list_objects_v2(Bucket="reconciler-state", Prefix=workspace.name).get("Contents", []):
        texts.append(s3.get_object(Bucket="reconciler-state", Key=item["Key"])["Body"].read().decode())
    return "\n".join(texts)


def jobs_named(sandbox, name: str) -> list:
    with BatchClient(api_settings(sandbox.env)) as client:
        return [j for j in JobsApi(client, "v2").list_jobs() if owner(j.description) == name]


def test_a_secret_stays_masked_after_its_reference_is_removed(workspace, run_cli, sandbox, monkeypatch):
    name = "masked-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    monkeypatch.setenv("DESCRIPTION_SECRET", SECRET)
    manifest = one_job(workspace, name, "x ${env:DESCRIPTION_SECRET}")
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 0, out + err
    manifest.write_text(manifest.read_text().replace("x ${env:DESCRIPTION_SECRET}", "x plain"))
    monkeypatch.delenv("DESCRIPTION_SECRET")  # the next run does not even know the value
    outputs = ["".join(run_cli("plan", "--format", fmt, *flags)[1:]) for fmt in ("text", "json", "markdown")
               for flags in ((), ("--show-unmanaged",))]
    assert run_cli("plan", "--out", "saved.plan")[0] == 0
    outputs.append("".join(run_cli("state", "show", name)[1:]))
    assert "~ update" in outputs[0] and "(sensitive)" in outputs[0]
    for text in (*outputs, everything_written(workspace, sandbox)):
        assert SECRET not in text
    code, out, err = run_cli("apply", "--auto-approve")  # the live value changes: no longer sensitive
    assert code == 0, out + err
    manifest.write_text(manifest.read_text().replace("x plain", "x plainer"))
    code, out, _ = run_cli("plan")
    assert '"x plain" → "x plainer"' in out or ('"x plain"' in out and '"x plainer"' in out), out


class EchoingBatchApi(BaseHTTPRequestHandler):
    """A Batch API that refuses every create with a 400 whose message echoes the body it was sent
    (as some services do), and with a 5 MiB message on the second create."""

    creates = 0

    def log_message(self, *args):
        pass

    def _send(self, status: int, document) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.endswith("/token"):
            self._send(200, {"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 3600})
        elif self.path.endswith("/process"):
            type(self).creates += 1
            echoed = sent.decode() if type(self).creates == 1 else sent.decode() + "z" * (5 * 2**20)
            self._send(400, {"error": {"status": 400, "reason": "Bad Request", "code": "COMMON_BAD_PAYLOAD",
                                       "message": f"invalid request: {echoed}"}})
        else:
            self._send(404, {"error": {"status": 404, "reason": "Not Found", "message": "no"}})

    def do_GET(self):
        self._send(200, {"data": [], "links": {}})


@pytest.fixture
def echoing_api(monkeypatch, tmp_path):
    (tmp_path / "state").mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingBatchApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for key, value in {"SH_BASE_URL": base, "SH_TOKEN_URL": f"{base}/token", "SH_CLIENT_ID": "id",
                       "SH_CLIENT_SECRET": "client-secret-never-shown", "NO_COLOR": "1",
                       "RECONCILER_STATE": str(tmp_path / "state" / "lockfile.json")}.items():
        monkeypatch.setenv(key, value)
    yield server
    server.shutdown()
    server.server_close()


def test_an_error_that_echoes_the_body_shows_and_stores_no_secret(echoing_api, tmp_path, run_cli, monkeypatch):
    (tmp_path / "manifests").mkdir()
    copy_evalscripts(tmp_path / "manifests")
    monkeypatch.setenv("DELIVERY_SECRET", SECRET)
    text = (EXAMPLES / "corsica-max-ndvi.yaml").read_text().replace(
        "iamRoleARN: arn:aws:iam::123456789012:role/sentinel-hub-batch-delivery",
        "accessKey: AKIA-LITERAL-KEY-4455\n          secretAccessKey: ${env:DELIVERY_SECRET}")
    (tmp_path / "manifests" / "job.yaml").write_text(text)
    outputs = []
    for _ in range(2):  # the echo, then the echo with 5 MiB of message
        code, out, err = run_cli("apply", "--auto-approve")
        assert code == 1 and "400 Bad Request" in out + err
        outputs.append(out + err)
    outputs.append("".join(run_cli("state", "show", "corsica-max-ndvi")[1:]))
    lockfile = (tmp_path / "state" / "lockfile.json").read_text()
    for text in (*outputs, lockfile):
        for secret in (SECRET, "AKIA-LITERAL-KEY-4455", "client-secret-never-shown"):
            assert secret not in text
    assert "invalid request" in outputs[0]
    assert len(lockfile) < 60_000 and all(len(o) < 60_000 for o in outputs)  # the 5 MiB message was cut


def test_a_tampered_saved_plan_does_nothing_a_fresh_plan_would_not(workspace, run_cli, sandbox):
    name = "tampered-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    one_job(workspace, name, "rev 1")
    stranger = sandbox.http().post("/api/v2/batch/process", json={
        **json.loads(json.dumps(_body(workspace))), "description": "someone else's job"}).json()["id"]
    assert run_cli("plan", "--out", "saved.plan")[0] == 0
    original = json.loads((workspace / "saved.plan").read_text())
    [create] = original["plan"]["actions"]
    assert create["kind"] == "CREATE"
    tamperings = {
        "another action": lambda a: a.update(kind="START", steps=["start"], job_id=stranger),
        "another job": lambda a: a.update(job_id=stranger),
        "more steps": lambda a: a.update(steps=["create", "start"]),
        "another body": lambda a: a.update(sends="0" * 32),
        "another name": lambda a: a.update(name=name + "-x"),
    }
    keys = PlanKeys(plan_key(os.environ))  # the key the plan was signed with (from SH_CLIENT_SECRET here)
    for what, tamper in tamperings.items():
        document = json.loads(json.dumps(original))
        tamper(document["plan"]["actions"][0])
        (workspace / "saved.plan").write_text(json.dumps(document))
        code, out, err = run_cli("apply", "saved.plan")
        assert code == 1 and "saved.plan was altered since it was signed" in err, (what, out, err)
        # even a tampered plan signed with the key (its holder gone astray) does only what a fresh plan does
        del document["signature"]
        (workspace / "saved.plan").write_text(json.dumps({**document, "signature": keys.sign(document)}))
        code, out, err = run_cli("apply", "saved.plan")
        assert code == 1 and "the saved plan is not what" in err, (what, out, err)
        assert err.count("\n") <= 2, err
    assert jobs_named(sandbox, name) == []
    status = sandbox.http().get(f"/api/v2/batch/process/{stranger}").json()["status"]
    assert status == "CREATED"  # never started
    (workspace / "saved.plan").write_text(json.dumps(original))
    manifest = workspace / "manifests" / "job.yaml"
    manifest.write_text(manifest.read_text().replace("rev 1", "rev 2"))  # edited after the review
    code, _, err = run_cli("apply", "saved.plan")
    assert code == 1 and f"{name}: the saved plan's create differs in what it sends" in err
    manifest.write_text(manifest.read_text().replace("rev 2", "rev 1"))
    code, out, err = run_cli("apply", "saved.plan")
    assert code == 0, out + err
    [job] = jobs_named(sandbox, name)
    assert job.description.startswith("rev 1 ")


def _body(workspace: Path) -> dict:
    from reconciler.manifests.loader import load

    [manifest] = load([workspace / "manifests"]).manifests
    return manifest.body


def test_a_planted_cache_entry_never_changes_what_apply_sends(workspace, run_cli, sandbox, monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(cache))
    name = "cached-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    one_job(workspace, name)
    assert run_cli("plan")[0] == 0  # fills the cache
    [stored] = cache.glob("manifests-*.json")
    document = json.loads(stored.read_text())
    [(file, entry)] = document["entries"].items()
    entry[2][0][3]["output"]["delivery"]["s3"]["url"] = "s3://attacker-bucket/loot"
    stored.write_text(json.dumps({**document, "entries": {file: entry}}))
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 0, out + err
    [job] = jobs_named(sandbox, name)
    assert job.request["output"]["delivery"]["s3"]["url"] == "s3://reconciler-demo-results/corsica-geopackage"
    assert "attacker-bucket" not in out


def test_apply_sends_what_the_saved_plan_showed_for_an_update_and_a_changed_secret(workspace, run_cli, sandbox,
                                                                                  monkeypatch):
    """An update reviewed as "rev 1" → "rev 2" never writes "rev 3"; a secret changed since the
    review is caught by its keyed hash, which the plan file holds instead of the secret."""
    name = "sends-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    manifest = one_job(workspace, name, "rev 1")
    assert run_cli("apply", "--auto-approve")[0] == 0
    manifest.write_text(manifest.read_text().replace("rev 1", "rev 2"))
    assert run_cli("plan", "--out", "saved.plan")[0] == 0
    manifest.write_text(manifest.read_text().replace("rev 2", "rev 3"))
    code, _, err = run_cli("apply", "saved.plan")
    assert code == 1 and f"{name}: the saved plan's update differs in what it sends" in err
    [job] = jobs_named(sandbox, name)
    assert job.description.startswith("rev 1 ")
    manifest.write_text(manifest.read_text().replace("rev 3", "rev 2"))
    assert run_cli("apply", "saved.plan")[0] == 0
    assert jobs_named(sandbox, name)[0].description.startswith("rev 2 ")

    monkeypatch.setenv("DESCRIPTION_SECRET", DESCRIBED)
    manifest.write_text(manifest.read_text().replace("rev 2", "rev ${env:DESCRIPTION_SECRET}"))
    assert run_cli("plan", "--out", "saved.plan")[0] == 0
    assert DESCRIBED not in (workspace / "saved.plan").read_text()
    monkeypatch.setenv("DESCRIPTION_SECRET", DESCRIBED + "-rotated")
    code, _, err = run_cli("apply", "saved.plan")
    assert code == 1 and "differs in what it sends" in err
    monkeypatch.setenv("DESCRIPTION_SECRET", DESCRIBED)
    code, out, err = run_cli("apply", "saved.plan")
    assert code == 0, out + err
    assert jobs_named(sandbox, name)[0].description == f"rev {DESCRIBED} [reconciler:{name}]"
