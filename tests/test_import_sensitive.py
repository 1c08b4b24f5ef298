"""`import` against the sandbox never shows a value the lockfile records as sensitive: a job whose
delivery role and description were sent from `${env:…}` references is imported again (a preview,
and adopted under its own name) and, once forgotten with `state rm`, the attempt to import it as
another name; the role and description appear only as placeholders, in the output and the file."""

from __future__ import annotations

import json

from reconciler.batch.live import LiveJob
from reconciler.operations.adopt import manifest_for
from tests.conftest import EXAMPLES, copy_evalscripts

ROLE = "arn:aws:iam::210987654321:role/never-shown-role"
DESCRIPTION = "Quarterly delivery for client Zeta-Nine"
ORIGINAL_ROLE = "arn:aws:iam::123456789012:role/sentinel-hub-batch-delivery"


def write_manifest(workspace, name: str) -> None:
    for path in (workspace / "manifests").glob("*.yaml"):
        path.unlink()
    copy_evalscripts(workspace / "manifests")
    text = (EXAMPLES / "corsica-max-ndvi.yaml").read_text()
    for old, new in ((f"iamRoleARN: {ORIGINAL_ROLE}", "iamRoleARN: ${env:JOB_ROLE}"),
                     ("name: corsica-max-ndvi", f"name: {name}"), ("state: started", "state: created"),
                     ("description: Max NDVI over Corsica", "description: ${env:JOB_DESCRIPTION}")):
        assert old in text
        text = text.replace(old, new)
    (workspace / "manifests" / f"{name}.yaml").write_text(text)


def test_import_writes_placeholders_for_every_path_the_lockfile_marks_sensitive(workspace, run_cli, monkeypatch):
    name = "role-" + workspace.name[-8:].lower().replace("_", "-").strip("-")
    monkeypatch.setenv("JOB_ROLE", ROLE)
    monkeypatch.setenv("JOB_DESCRIPTION", DESCRIPTION)
    write_manifest(workspace, name)
    code, out, err = run_cli("apply", "--auto-approve")
    assert code == 0, out + err
    [record] = [v for k, v in json.loads(run_cli("state", "pull")[1])["jobs"].items() if k == name]
    assert ["output", "delivery", "s3", "iamRoleARN"] in record["sensitivePaths"]
    job_id = record["id"]
    monkeypatch.delenv("JOB_ROLE")  # a reviewer importing elsewhere: the values are not in their environment
    monkeypatch.delenv("JOB_DESCRIPTION")
    role_variable = f"{name.upper().replace('-', '_')}_OUTPUT_DELIVERY_S3_IAMROLEARN"
    description_variable = f"{name.upper().replace('-', '_')}_DESCRIPTION"
    shown: list[str] = []

    # under its own name, no `state rm` needed: a preview, then adopted again with --write
    code, out, err = run_cli("import", name, job_id)
    shown.append(out + err)
    assert code == 0 and f"iamRoleARN: ${{env:{role_variable}}}" in out, out + err
    assert f"description: ${{env:{description_variable}}}" in out
    (workspace / "again").mkdir()
    code, out, err = run_cli("import", name, job_id, "--write", f"again/{name}.yaml")
    shown.append(out + err)
    assert code == 0 and role_variable in out and description_variable in out, out + err
    written = (workspace / "again" / f"{name}.yaml").read_text()
    assert f"${{env:{role_variable}}}" in written and f"${{env:{description_variable}}}" in written
    [record] = [v for k, v in json.loads(run_cli("state", "pull")[1])["jobs"].items() if k == name]
    assert ["output", "delivery", "s3", "iamRoleARN"] in record["sensitivePaths"]
    assert ["description"] in record["sensitivePaths"]

    # the adopted record and the written manifest agree: with the values set, nothing to change
    monkeypatch.setenv(role_variable, ROLE)
    monkeypatch.setenv(description_variable, DESCRIPTION)
    (workspace / "manifests" / f"{name}.yaml").unlink()
    (workspace / "again" / f"{name}.yaml").rename(workspace / "manifests" / f"{name}.yaml")
    code, out, err = run_cli("plan", "--detailed-exitcode")
    shown.append(out + err)
    assert code == 0, out + err

    # forgotten, then taken as another name: refused (it carries the marker of its name), and silent
    assert run_cli("state", "rm", name)[0] == 0
    code, out, err = run_cli("import", f"{name}-other", job_id, "--write", "other.yaml")
    shown.append(out + err)
    assert code == 1 and f"marked for {name!r}" in out + err
    assert not (workspace / "other.yaml").exists()

    for text in (*shown, written):
        assert ROLE not in text and DESCRIPTION not in text


def test_manifest_for_masks_recorded_paths_credentials_and_the_description():
    live = LiveJob(id="id-1", api="v2", status="CREATED", description="secret words [reconciler:x]", request={
        "description": "secret words [reconciler:x]",
        "input": {"type": "tiling-grid", "id": 0, "resolution": 60},
        "output": {"delivery": {"s3": {"url": "s3://b/p", "iamRoleARN": "arn:role", "accessKey": "AKIA-1",
                                       "secretAccessKey": "s3cret/key", "extra": [{"token": "t-1"}]}}},
        "processRequest": {"evalscript": "//VERSION=3\n", "client_secret": "abc123"},
    })
    recorded = frozenset({("output", "delivery", "s3", "iamRoleARN"), ("output", "delivery", "s3", "extra", 0, "token"),
                          ("description",), ("output", "gone")})
    text, variables, masked = manifest_for("7th-job", live, recorded)
    for value in ("arn:role", "AKIA-1", "s3cret/key", "t-1", "abc123", "secret words"):
        assert value not in text
    assert variables == ("_7TH_JOB_OUTPUT_DELIVERY_S3_IAMROLEARN", "_7TH_JOB_OUTPUT_DELIVERY_S3_ACCESSKEY",
                         "_7TH_JOB_OUTPUT_DELIVERY_S3_SECRETACCESSKEY", "_7TH_JOB_OUTPUT_DELIVERY_S3_EXTRA_0_TOKEN",
                         "_7TH_JOB_PROCESSREQUEST_CLIENT_SECRET", "_7TH_JOB_DESCRIPTION")
    assert all(f"${{env:{v}}}" in text for v in variables)
    assert masked == recorded - {("output", "gone")} | {
        ("output", "delivery", "s3", "accessKey"), ("output", "delivery", "s3", "secretAccessKey"),
        ("processRequest", "client_secret")}
    assert "url: s3://b/p" in text and "resolution: 60" in text  # the rest as it is
