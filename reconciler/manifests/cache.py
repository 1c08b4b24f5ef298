"""Beside step 2 of loading manifests: what loading made of each file, kept between runs and keyed
by content, so a plan over 10,000 unchanged manifests does not parse and validate them again.

An entry is used only when the file's bytes, the bytes of each evalscript it reads, and this
package's code (with the Python, pydantic and ruamel.yaml it runs on) are what they were when the
entry was written. The loader stores only files that loaded cleanly: every document valid, no
diagnostic, nothing sensitive (no `${env:…}` reference, no literal credential), so the cache never
holds a secret and never hides a problem. A cache that is missing, unreadable or of another
version is an empty one: it makes loading faster, never different.

Where: `RECONCILER_CACHE_DIR`, else `$XDG_CACHE_HOME/reconciler`, else `~/.cache/reconciler`;
`RECONCILER_CACHE_DIR=off` turns it off. One file per working directory and paths loaded, written
with marshal (plain data only: it cannot carry code the way pickle can) and replaced atomically.
The file helpers at the end (`cache_file`, `read_entries`, `write_entries`) serve the other cache
kept in the folder too, the digests of live requests (reconciler.api.digests).
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
STALE_AFTER = 30 * 24 * 3600  # seconds: files of paths not loaded for a month are removed
LOAD_PREFIX = "manifests-"
LIVE_PREFIX = "live-"  # reconciler.api.digests

Entry = tuple[bytes, tuple[tuple[str, bytes], ...], tuple[Any, ...]]  # file digest, evalscripts, documents


def folder() -> Path | None:
    configured = os.environ.get("RECONCILER_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reconciler"


def content_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


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
    """The entries of one set of paths: `get` what is still valid, `put` what was loaded, `save`."""

    def __init__(self, path: Path | None, entries: dict[str, Entry]):
        self.path = path
        self.hits = 0
        self._old = entries
        self._kept: dict[str, Entry] = {}
        self._scripts: dict[str, bytes | None] = {}

    @classmethod
    def open(cls, paths: Sequence[str | os.PathLike]) -> LoadCache:
        path = cache_file(LOAD_PREFIX, "\0".join([os.getcwd(), *map(str, paths)]))
        return cls(path, read_entries(path))

    def get(self, file: str, raw: bytes, script: Callable[[str], object]) -> tuple[Any, ...] | None:
        """The stored documents of `file` if its bytes and its evalscripts (`script(key)` reads
        one: text, or anything else when it cannot be read) are unchanged; None otherwise."""
        entry = self._old.get(file)
        if entry is None or entry[0] != content_digest(raw):
            return None
        if any(self._script_digest(key, script) != digest for key, digest in entry[1]):
            return None
        self._kept[file] = entry
        self.hits += 1
        return entry[2]

    def put(self, file: str, raw: bytes, scripts: dict[str, str], documents: tuple[Any, ...]) -> None:
        """Store what `file` loaded to; `scripts` are the evalscripts it read, by key."""
        if self.path is not None:
            used = tuple((key, content_digest(text.encode())) for key, text in sorted(scripts.items()))
            self._kept[file] = (content_digest(raw), used, documents)

    def save(self) -> None:
        """Write the entries used or made by this run (others are dropped), when they changed."""
        write_entries(self.path, self._kept, self._old)

    def _script_digest(self, key: str, script: Callable[[str], object]) -> bytes | None:
        if key not in self._scripts:
            text = script(key)
            self._scripts[key] = content_digest(text.encode()) if isinstance(text, str) else None
        return self._scripts[key]


def cache_file(prefix: str, key: str) -> Path | None:
    """The file of one cache (`prefix`) for `key` in the cache folder; None when caching is off."""
    where = folder()
    return None if where is None else where / f"{prefix}{hashlib.blake2b(key.encode(), digest_size=12).hexdigest()}.marshal"


def read_entries(path: Path | None) -> dict:
    """The entries a cache file holds, or none when it is missing, unreadable or of other code."""
    if path is None:
        return {}
    try:
        stored = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    valid = type(stored) is tuple and len(stored) == 3 and stored[:2] == (FORMAT, code_version())
    return stored[2] if valid and type(stored[2]) is dict else {}


def write_entries(path: Path | None, entries: dict, old: dict) -> None:
    """Replace the file's entries atomically when they differ from `old` (what it held)."""
    if path is None:
        return
    try:
        if entries == old:
            if entries:
                os.utime(path)  # in use: not stale, however long the files stay unchanged
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(marshal.dumps((FORMAT, code_version(), entries)))
        os.replace(temporary, path)
        _remove_stale(path.parent)
    except OSError:
        pass  # a read-only or full disk only costs the next run its speed


def _remove_stale(where: Path) -> None:
    cutoff = time.time() - STALE_AFTER
    for entry in os.scandir(where):
        if entry.name.startswith((LOAD_PREFIX, LIVE_PREFIX)) and entry.stat().st_mtime < cutoff:
            os.unlink(entry.path)
