"""Beside step 2 of loading manifests: what loading made of each file, kept between runs and keyed
by content, so `validate` and `plan` over 10,000 unchanged manifests do not parse them again.

An optimisation only, and never trusted (docs/security.md): `apply` and `reconcile` never use it,
and a saved plan is derived again without it before anything is sent. An entry is used only when
the file's bytes, the bytes of each evalscript it reads, and this package's code (with the Python,
pydantic and ruamel.yaml it runs on) are what they were when the entry was written (those
digests prove it unchanged: only its header is validated again, the loader says how); anything else about a
cache file — damaged, foreign, oversized, not a regular file, a link — makes it an empty cache.
An edited entry can therefore mislead a `validate` or a `plan`, never what `apply` sends.
The loader stores only files that loaded cleanly: every document valid, no diagnostic, nothing
sensitive (no `${env:…}` reference, no literal credential), so the cache never holds a secret.

Where: `RECONCILER_CACHE_DIR`, else `$XDG_CACHE_HOME/reconciler`, else `~/.cache/reconciler`;
`RECONCILER_CACHE_DIR=off` turns it off. One JSON file per working directory and paths loaded,
read without following links and written to a new temporary name, then renamed over it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeGuard

from pydantic_core import from_json, to_json

from reconciler.atomic import atomic_write

FORMAT = 4
MAX_BYTES = 256 * 2**20  # a cache of 10,000 manifests is a few dozen MiB
STALE_AFTER = 30 * 24 * 3600  # seconds: files of paths not loaded for a month are removed
PREFIX = "manifests-"
_SWEPT = (PREFIX, "live-")  # live-: digests of live requests that versions before 0.2 kept

# file → [file digest, [[evalscript key, digest], …], [document, …]] (digests in hex)
Entry = list


def folder() -> Path | None:
    configured = os.environ.get("RECONCILER_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reconciler"


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@functools.cache
def code_version() -> str:
    """A digest of the source of this package and the versions of what interprets manifests:
    entries written by other code may mean something else."""
    import pydantic
    import pydantic_core
    import ruamel.yaml

    package = Path(__file__).resolve().parent.parent
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{sys.version}|{pydantic.VERSION}|{pydantic_core.__version__}|{ruamel.yaml.__version__}".encode())
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class LoadCache:
    """The entries of one set of paths: `get` what is still valid, `put` what was loaded, `save`.
    A cache opened with `enabled=False` finds nothing and keeps nothing."""

    def __init__(self, path: Path | None, entries: dict[str, Entry]):
        self.path = path
        self.hits = 0
        self._old = entries  # each taken out as it is looked up: what stays in use, the manifests keep
        self._stored = len(entries)  # entries the file held
        self._checked: dict[str, tuple[str, list[list[str]]]] = {}  # file → its entry's digests, found unchanged
        # file → its digests and what makes its documents, for `save` (made as they are written: the
        # stored form of 100,000 manifests, all alive at once, took some 200 MB beside the manifests)
        self._entries: dict[str, tuple[str, list[list[str]], Callable[[], list]]] = {}
        self._scripts: dict[str, str | None] = {}

    @classmethod
    def open(cls, paths: Sequence[str | os.PathLike], enabled: bool = True) -> LoadCache:
        if not enabled:
            return cls(None, {})
        where = folder()
        path = None if where is None else where / _name("\0".join([os.getcwd(), *map(str, paths)]))
        return cls(path, read_entries(path))

    def get(self, file: str, raw: bytes, script: Callable[[str], object]) -> list | None:
        """The stored documents of `file` if its bytes and its evalscripts (`script(key)` reads
        one: text, or anything else when it cannot be read) are unchanged; None otherwise. The
        documents are plain JSON data: the loader validates them before use (`used` says so).
        An entry is looked up once."""
        entry = self._old.pop(file, None)
        if not _well_formed(entry) or entry[0] != content_digest(raw):
            return None
        if any(self._script_digest(key, script) != digest for key, digest in entry[1]):
            return None
        self._checked[file] = (entry[0], entry[1])
        return entry[2]

    def used(self, file: str, documents: Callable[[], list]) -> None:
        """The stored documents of `file` passed validation and stand for it in this run;
        `documents()` makes them again, should the cache be written."""
        self._entries[file] = (*self._checked.pop(file), documents)
        self.hits += 1

    def put(self, file: str, raw: bytes, scripts: dict[str, str], documents: Callable[[], list]) -> None:
        """Store what `file` loaded to: `documents()` makes it, plain JSON data, when the cache is
        written; `scripts` are the evalscripts it read, by key."""
        if self.path is not None:
            used = [[key, content_digest(text.encode())] for key, text in sorted(scripts.items())]
            self._entries[file] = (content_digest(raw), used, documents)

    def save(self) -> None:
        """Write the entries used or made by this run (others are dropped), when they changed."""
        if len(self._entries) > self.hits or self.hits < self._stored:  # some made, or some of the file's not used
            write_entries(self.path, ((file, [digest, used, documents()])
                                      for file, (digest, used, documents) in self._entries.items()))
        elif self.path is not None and self._entries:
            touch(self.path)

    def _script_digest(self, key: str, script: Callable[[str], object]) -> str | None:
        if key not in self._scripts:
            text = script(key)
            self._scripts[key] = content_digest(text.encode()) if isinstance(text, str) else None
        return self._scripts[key]


def _name(key: str) -> str:
    return f"{PREFIX}{hashlib.blake2b(key.encode(), digest_size=12).hexdigest()}.json"


def _well_formed(entry: object) -> TypeGuard[Entry]:
    return (type(entry) is list and len(entry) == 3 and type(entry[0]) is str and type(entry[2]) is list
            and type(entry[1]) is list
            and all(type(s) is list and len(s) == 2 and all(type(x) is str for x in s) for s in entry[1]))


def read_entries(path: Path | None) -> dict:
    """The entries a cache file holds, or none when it is missing, unreadable, of other code, too
    large, not a regular file or a link: it is read without following links or blocking."""
    if path is None:
        return {}
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_BYTES:
            return {}
        with os.fdopen(os.dup(descriptor), "rb") as f:
            head = _head()
            if f.read(len(head)) != head:  # another format or other code: not worth parsing
                return {}
            f.seek(0)
            data = f.read(MAX_BYTES + 1)
        stored = from_json(data) if len(data) <= MAX_BYTES else None
    except (OSError, ValueError, RecursionError):
        return {}
    finally:
        os.close(descriptor)
    if (type(stored) is dict and stored.get("format") == FORMAT and stored.get("code") == code_version()
            and type(stored.get("entries")) is dict):
        return stored["entries"]
    return {}


def write_entries(path: Path | None, entries: Iterable[tuple[str, Entry]]) -> None:
    """Replace the file with these entries atomically: written entry by entry under a fresh
    temporary name (created, never opened if it exists), then renamed over the file, which
    replaces a planted link rather than writing through it."""
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, _document(entries))
        _remove_stale(path.parent)
    except (OSError, ValueError):
        pass  # a read-only or full disk, or a value JSON cannot hold, only costs the next run its speed


def touch(path: Path) -> None:
    """The file is in use: not stale, however long the files it holds stay unchanged."""
    with contextlib.suppress(OSError):
        os.utime(path, follow_symlinks=False)


def _head() -> bytes:
    """How the file of this format and code starts (the reader looks at it before parsing)."""
    return b'{"format":%d,"code":%s,"entries":{' % (FORMAT, to_json(code_version()))


def _document(entries: Iterable[tuple[str, Entry]]) -> Iterator[bytes]:
    """The cache file's JSON, `{"format", "code", "entries": {file: entry, …}}`, in pieces."""
    yield _head()
    for count, (file, entry) in enumerate(entries):
        yield (b"," if count else b"") + to_json(file) + b":" + to_json(entry)
    yield b"}}"


def _remove_stale(where: Path) -> None:
    cutoff = time.time() - STALE_AFTER
    for entry in os.scandir(where):
        if entry.name.startswith(_SWEPT) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
            os.unlink(entry.path)
