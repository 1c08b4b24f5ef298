"""The S3 client of the state store against S3-compatible endpoints, with boto3's own defaults
(≥ 1.36: a CRC checksum on every upload): on a custom endpoint it sends checksums only where the
API requires them, and a Content-MD5 on DeleteObjects, unless the user chose otherwise (variable or
config file); on AWS itself boto3's defaults stand. The headers are read from the requests sent to
the sandbox's S3, and every store operation still works there."""

from __future__ import annotations

import uuid

import pytest

from reconciler.state.objects import S3Store, open_store, s3_client
from tests.state_helpers import STATE_BUCKET

CHECKSUM_VARIABLES = ("AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION")


@pytest.fixture
def environment(sandbox, monkeypatch, tmp_path):
    """The sandbox's settings, no checksum choice of the user's, an empty AWS config file."""
    for key, value in sandbox.env.items():
        monkeypatch.setenv(key, value)
    for variable in CHECKSUM_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "aws-config").write_text("[default]\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return tmp_path


def _exercised(store: S3Store) -> dict[str, dict[str, str]]:
    """Every store operation once, on keys of its own; the headers each S3 operation sent."""
    sent: dict[str, dict[str, str]] = {}

    def seen(request, event_name: str, **_) -> None:  # event_name: before-send.s3.<Operation>
        sent.setdefault(event_name.rpartition(".")[2], {k.lower(): v for k, v in request.headers.items()})

    store._s3.meta.events.register("before-send.s3", seen)
    prefix = f"checksums/{uuid.uuid4().hex}/"
    etag = store.put(f"{prefix}a.json", b'{"a": 1}', if_none_match=True)
    store.put(f"{prefix}a.json", b'{"a": 2}', if_match=etag)
    assert store.get(f"{prefix}a.json").data == b'{"a": 2}'
    store.put(f"{prefix}b.json", b"{}")
    assert store.list(prefix) == [f"{prefix}a.json", f"{prefix}b.json"]
    store.delete_many([f"{prefix}a.json", f"{prefix}b.json"])
    assert store.list(prefix) == []
    return sent


def _checksums(headers: dict[str, str]) -> set[str]:
    return {k for k in headers if k.startswith(("x-amz-checksum-", "x-amz-sdk-checksum-"))}


def test_boto3_defaults_send_checksums_on_every_upload(environment):
    """The premise: the installed boto3 puts a CRC on uploads unless told otherwise."""
    import boto3

    plain = boto3.client("s3")
    assert plain.meta.config.request_checksum_calculation == "when_supported"
    assert _checksums(_exercised(S3Store(STATE_BUCKET, plain))["PutObject"])


def test_on_a_custom_endpoint_checksums_go_only_where_required(environment):
    store, _ = open_store(f"s3://{STATE_BUCKET}/state.json")
    config = store._s3.meta.config
    assert (config.request_checksum_calculation, config.response_checksum_validation) == ("when_required",) * 2
    sent = _exercised(store)
    assert _checksums(sent["PutObject"]) == set() and _checksums(sent["GetObject"]) == set()
    assert "content-md5" in sent["DeleteObjects"]  # what stores that predate CRC checksums require there


@pytest.mark.parametrize("where", ["variable", "config file"])
def test_the_users_own_checksum_choice_stands(environment, monkeypatch, where):
    if where == "variable":
        monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_supported")
    else:
        (environment / "aws-config").write_text("[default]\nrequest_checksum_calculation = when_supported\n")
    store, _ = open_store(f"s3://{STATE_BUCKET}/state.json")
    config = store._s3.meta.config
    assert (config.request_checksum_calculation, config.response_checksum_validation) == ("when_supported", "when_required")
    assert _checksums(_exercised(store)["PutObject"])


def test_on_aws_itself_boto3s_defaults_stand(environment, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = s3_client()
    assert client.meta.config.request_checksum_calculation == "when_supported"
    assert S3Store(STATE_BUCKET, client).endpoint().endswith("(the AWS default)")


def test_the_endpoint_names_the_variable_that_chose_it(environment, sandbox):
    store, _ = open_store(f"s3://{STATE_BUCKET}/state.json")
    assert store.endpoint() == f"{sandbox.env['AWS_ENDPOINT_URL_S3']} (AWS_ENDPOINT_URL_S3)"
