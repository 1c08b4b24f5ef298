"""Shared pieces of the state tests (contract, races, kills): a fake clock, a store wrapper that
logs every call (and can crash on one), raw access to what a store holds, and boto3 from a
sandbox env file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.state.objects import Blob, ObjectStore

STATE_BUCKET = "reconciler-state"


class FakeClock:
    """`time.time` and `time.sleep` for Lease: sleeping only moves the clock (and can run a hook)."""

    def __init__(self, now: float = 1_750_000_000.0):
        self.now = now
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(seconds)


class Crash(Exception):
    """The process 'dies' here: raised by CallLog before the call it was told to fail."""


def _crash(call: Call) -> Exception:
    return Crash(f"{call.op} {call.key}")


@dataclass
class Call:
    op: str
    key: str
    size: int = 0
    if_match: str | None = None
    if_none_match: bool = False


@dataclass
class CallLog:
    """An ObjectStore that forwards to `inner` and records every call; when `crash_on(call)` is true
    the call is not made and `failure(call)` is raised instead (by default Crash). `before(call)`
    runs first (e.g. to move a fake clock: a slow store)."""

    inner: ObjectStore
    calls: list[Call] = field(default_factory=list)
    crash_on: Callable[[Call], bool] = lambda call: False
    failure: Callable[[Call], Exception] = _crash
    before: Callable[[Call], None] = lambda call: None

    def _log(self, call: Call) -> None:
        self.before(call)
        if self.crash_on(call):
            raise self.failure(call)
        self.calls.append(call)

    def get(self, key: str) -> Blob | None:
        self._log(Call("get", key))
        return self.inner.get(key)

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        self._log(Call("put", key, len(data), if_match, if_none_match))
        return self.inner.put(key, data, if_match=if_match, if_none_match=if_none_match)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self._log(Call("delete", key, 0, if_match))
        self.inner.delete(key, if_match=if_match)

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:  # one logged call per key, so a crash can fall between two of them
            self._log(Call("delete", key))
            self.inner.delete(key)

    def list(self, prefix: str) -> list[str]:
        self._log(Call("list", prefix))
        return self.inner.list(prefix)

    def url(self, key: str) -> str:
        return self.inner.url(key)

    @property
    def enforces_conditions(self) -> bool:
        return self.inner.enforces_conditions

    def endpoint(self) -> str:
        return self.inner.endpoint()

    def of(self, op: str) -> list[Call]:
        return [c for c in self.calls if c.op == op]

    def clear(self) -> None:
        self.calls.clear()


def s3_client(env: dict):
    """boto3 for the sandbox's S3, from its env file (no retries: failures show at once)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def raw_s3_objects(client, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under `prefix`, read around the store (its `list` is under test)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def raw_local_objects(root: Path) -> dict[str, bytes]:
    """Every file under `root`, hidden ones (lock, temporaries) included."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
