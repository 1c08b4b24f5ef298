"""The storage under the lockfile: a few objects with compare-and-swap writes, in S3 or in a
local directory. One small interface, so the lockfile and the lease never know which.

S3 writes use `If-Match` (the ETag read) and `If-None-Match: *` (create only); a lost race is a
`PreconditionFailed`, never an overwrite. The local store gives the same guarantees with an
exclusive `flock` around check-and-write, `link()` to create only when absent (like O_EXCL, but
the file appears with its whole content) and `rename()` to replace atomically.

Not every S3-compatible store checks those headers: some accept them and write anyway. So before
the first lease on a store in a run (a process), `require_conditional_writes` proves that it
refuses a lost race, on a probe key of its own; a store that does not is refused, never used
unlocked. Stores whose conditions this process enforces itself (the local one) skip the probe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.atomic import temporary_beside
from reconciler.errors import StateError


class PreconditionFailed(Exception):
    """A conditional write or delete lost: the object is not what the caller expected."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    etag: str


class ObjectStore(Protocol):
    # True when this process enforces `if_match`/`if_none_match` itself; False when they are a
    # server's word, which `require_conditional_writes` checks before the store is trusted.
    enforces_conditions: bool

    def endpoint(self) -> str:
        """Where the store is and what chose it, for messages (an endpoint URL, a folder)."""

    def get(self, key: str) -> Blob | None: ...

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        """Write `data`; with `if_match` only over that version, with `if_none_match` only when absent."""

    def delete(self, key: str, *, if_match: str | None = None) -> None: ...

    def delete_many(self, keys: list[str]) -> None:
        """Delete these keys (unconditionally; absent ones are no error), in as few calls as the store allows."""

    def list(self, prefix: str) -> list[str]: ...

    def url(self, key: str) -> str: ...


UNSAFE_STORE_HINT = ("this store ignores conditional writes, so two runs could both take the lease: "
                     "use AWS S3 or a store that honours If-Match/If-None-Match")
_proven: set[tuple[str, str]] = set()  # (endpoint, store) shown to refuse lost races: one probe per run


def require_conditional_writes(store: ObjectStore, key: str) -> None:
    """Prove, once per store and process, that `store` refuses a second `If-None-Match: *` create and
    an `If-Match` write over an ETag the object does not have (a stale one): four requests on
    `<key>.probe/<uuid>`, which is deleted again. StateError naming the store otherwise."""
    identity = (store.endpoint(), store.url(""))
    if store.enforces_conditions or identity in _proven:
        return
    probe = f"{key}.probe/{uuid.uuid4()}"
    try:
        ignored = _ignored_conditions(store, probe)
    except BaseException:
        with contextlib.suppress(StateError):  # the first error is the one to show
            store.delete(probe)
        raise
    if ignored:
        with contextlib.suppress(StateError):
            store.delete(probe)
        raise StateError(f"the state store at {store.endpoint()} ignored {' and '.join(ignored)} on a probe "
                         f"beside {store.url(key)}: nothing was locked or changed", UNSAFE_STORE_HINT)
    store.delete(probe)  # refused here (no permission on the probe key) is an error: it would stay behind
    _proven.add(identity)


def _ignored_conditions(store: ObjectStore, probe: str) -> list[str]:
    """The conditions `store` let a write through despite, on the new key `probe` (left in place)."""
    try:
        store.put(probe, b"probe: created", if_none_match=True)
    except PreconditionFailed:
        raise StateError(f"the state store at {store.endpoint()} refused to create {store.url(probe)} "
                         "with If-None-Match: *, which the lease is made of", UNSAFE_STORE_HINT) from None
    ignored = []
    with contextlib.suppress(PreconditionFailed):
        store.put(probe, b"probe: created twice", if_none_match=True)
        ignored.append("If-None-Match: * (a second create succeeded)")
    with contextlib.suppress(PreconditionFailed):
        store.put(probe, b"probe: written over a stale ETag", if_match=f'"{uuid.uuid4().hex}"')
        ignored.append("If-Match (a write over a stale ETag succeeded)")
    return ignored


# Something that looks like a URL (a scheme, or a mistyped one: `s3:/`, `s3//`) but is not one we
# take: read as a local path it would silently start a second, empty state (docs/lockfile.md).
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/|^[A-Za-z][A-Za-z0-9+.-]*//")


def open_store(location: str) -> tuple[ObjectStore, str]:
    """`s3://bucket/key.json`, `file://path/state.json` or a plain path without a scheme → (store,
    key). Anything else that looks like a URL is refused before anything is read or written."""
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        if not bucket or not key or key.endswith("/"):
            raise StateError(f"{location!r} is not an S3 object URL", "use s3://bucket/path/state.json")
        return S3Store(bucket), key
    if not location.startswith("file://") and _URL_LIKE.match(location):
        raise StateError(f"the state location {location!r} is neither s3://bucket/key, file://path nor a local path",
                         "spell it s3://bucket/path/state.json (lowercase, two slashes), or give a local path")
    path = Path(location.removeprefix("file://")).expanduser().absolute()
    if path.is_dir():
        raise StateError(f"{path} is a folder", "give the lockfile's path, e.g. .reconciler/state.json")
    if path.parent.exists() and not path.parent.is_dir():
        raise StateError(f"the lockfile {path} cannot be there: {path.parent} is a file, not a folder",
                         "check RECONCILER_STATE (or --state): it names the lockfile, in a folder of its own")
    if not path.parent.is_dir():
        raise StateError(f"the folder of the lockfile {path} does not exist",
                         "create it first (a mistyped path would otherwise start a second, empty state)")
    return LocalStore(path.parent), path.name


ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# botocore setting → the variable (or the config file key of the same name) a user sets it with
CHECKSUM_SETTINGS = {"request_checksum_calculation": "AWS_REQUEST_CHECKSUM_CALCULATION",
                     "response_checksum_validation": "AWS_RESPONSE_CHECKSUM_VALIDATION"}


def s3_client():
    """boto3's S3 client. On a custom endpoint (an S3-compatible store) checksums are sent and checked
    only where the API requires them, unless the user chose otherwise: since boto3 1.36 every upload
    carries a CRC checksum by default, which several such stores refuse. DeleteObjects, whose checksum
    is always required, also gets the Content-MD5 those stores ask for."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    custom = any(os.environ.get(variable) for variable in ENDPOINT_VARIABLES)
    relaxed = {setting: "when_required" for setting, variable in CHECKSUM_SETTINGS.items()
               if custom and setting in Config.OPTION_DEFAULTS  # botocore < 1.36: no such setting, no CRC
               and not os.environ.get(variable) and not _in_config_file(setting)}
    try:
        client = boto3.client("s3", config=Config(**relaxed))
    except BotoCoreError as e:
        raise StateError(f"cannot set up S3: {e}",
                         "check AWS_PROFILE, AWS_DEFAULT_REGION and the AWS config files") from None
    if custom:
        client.meta.events.register("before-sign.s3.DeleteObjects", _content_md5)
    return client


def _in_config_file(setting: str) -> bool:
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        return setting in botocore.session.Session().get_scoped_config()
    except BotoCoreError:
        return False  # a missing profile: creating the client says so


def _content_md5(request, **_) -> None:
    import base64

    if isinstance(request.body, bytes) and "Content-MD5" not in request.headers:
        digest = hashlib.md5(request.body, usedforsecurity=False).digest()
        request.headers["Content-MD5"] = base64.b64encode(digest).decode()


class S3Store:
    """A bucket, through boto3's standard chain (environment, profiles, roles; AWS_ENDPOINT_URL_S3)."""

    enforces_conditions = False  # the server checks them, or says it does: probed before the first lease

    def __init__(self, bucket: str, client=None):
        self.bucket = bucket
        self._s3 = client or s3_client()

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def endpoint(self) -> str:
        url = self._s3.meta.endpoint_url
        named = next((v for v in ENDPOINT_VARIABLES if os.environ.get(v, "").rstrip("/") == url.rstrip("/")), None)
        return f"{url} ({named})" if named else f"{url} (the AWS default)" if url.endswith(".amazonaws.com") else url

    def get(self, key: str) -> Blob | None:
        with self._translated(key):
            try:
                answer = self._s3.get_object(Bucket=self.bucket, Key=key)
            except self._s3.exceptions.NoSuchKey:
                return None
            return Blob(answer["Body"].read(), answer["ETag"])

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        conditions = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"} if if_none_match else {}
        with self._translated(key):
            return self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json",
                                       **conditions)["ETag"]

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        with self._translated(key):
            self._s3.delete_object(Bucket=self.bucket, Key=key, **({"IfMatch": if_match} if if_match else {}))

    def delete_many(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # S3's DeleteObjects takes up to 1,000 keys
            batch = keys[start:start + 1000]
            with self._translated(batch[0]):
                answer = self._s3.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": key} for key in batch], "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StateError(f"S3 refused to delete {len(answer['Errors'])} object(s), e.g. {self.url(first['Key'])}: "
                                 f"{first.get('Code')} {first.get('Message', '')}", "check the credentials' permissions")

    def list(self, prefix: str) -> list[str]:
        with self._translated(prefix):
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    @contextlib.contextmanager
    def _translated(self, key: str):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
                raise PreconditionFailed(code) from None
            if code == "NoSuchKey" or (status == 404 and code in ("404", "NotFound")):
                raise PreconditionFailed(code) from None  # a conditional delete of a gone object
            raise StateError(f"S3 refused {self.url(key)}: {code or status} {e.response.get('Error', {}).get('Message', '')}",
                             "check the bucket, the credentials (AWS_* variables or profile) and AWS_ENDPOINT_URL_S3") from None
        except BotoCoreError as e:
            raise StateError(f"cannot reach S3 for {self.url(key)}: {e}",
                             "check the network, the credentials and AWS_ENDPOINT_URL_S3") from None


class LocalStore:
    """Files in one directory, for local use (one machine; not on network file systems)."""

    # Honoured by construction: the check and the write happen here under an exclusive flock, and
    # link()/rename() cannot half-happen, so there is no server's word to probe.
    enforces_conditions = True

    def __init__(self, directory: Path):
        self.directory = directory

    def url(self, key: str) -> str:
        return str(self.directory / key)

    def endpoint(self) -> str:
        return f"the folder {self.directory}"

    def get(self, key: str) -> Blob | None:
        try:
            data = (self.directory / key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StateError(f"cannot read {self.url(key)}: {e.strerror}") from None
        return Blob(data, _etag(data))

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        path = self.directory / key
        with self._locked():
            current = self.get(key)
            if (if_none_match and current is not None) or (if_match and (current is None or current.etag != if_match)):
                raise PreconditionFailed(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            with temporary_beside(path, data) as tmp:
                try:
                    if if_none_match:
                        os.link(tmp, path)  # fails if the file appeared: create-only, with its whole content
                    else:
                        os.replace(tmp, path)
                except FileExistsError:
                    raise PreconditionFailed(key) from None
        return _etag(data)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        with self._locked():
            current = self.get(key)
            if current is None and if_match is None:
                return  # like S3: deleting what is not there is no error
            if current is None or (if_match and current.etag != if_match):
                raise PreconditionFailed(key)
            (self.directory / key).unlink()

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)

    def list(self, prefix: str) -> list[str]:
        """Keys starting with `prefix`; only the folders the prefix can reach are walked (the store
        may be a repository's root)."""
        head = prefix.rpartition("/")[0]
        base = self.directory / head if head else self.directory
        if not base.is_dir():
            return []
        found = []
        for entry in base.iterdir():
            relative = entry.relative_to(self.directory).as_posix()
            if not (relative.startswith(prefix) or prefix.startswith(relative + "/")):
                continue
            if entry.is_file():
                found.append(relative)
            elif entry.is_dir():
                found += [p.relative_to(self.directory).as_posix() for p in entry.rglob("*") if p.is_file()]
        return sorted(k for k in found if k.startswith(prefix) and not Path(k).name.startswith("."))

    @contextlib.contextmanager
    def _locked(self):
        """One writer at a time across processes; the kernel drops the lock if the holder dies."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / ".reconciler.flock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StateError(f"cannot use {self.directory} for the lockfile: {e.strerror}",
                             "check RECONCILER_STATE (or --state) and that this user may write in that folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
