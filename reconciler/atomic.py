"""Writing a file whole or not at all, for every writer in the project (saved plans, formatted
manifests, the load cache, the local lockfile store, the sandbox's env file): the data goes to a
fresh temporary file beside the target (created, never opened if it exists), is flushed to disk,
and only then takes the target's place in one step. Whatever fails, the temporary file is removed
and the target is as it was."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator


@contextlib.contextmanager
def temporary_beside(path: str | os.PathLike, data: bytes | Iterable[bytes], mode: int | None = None) -> Iterator[str]:
    """A temporary file holding `data` (bytes, or pieces of them written in turn; flushed to disk,
    with `mode` when given) in the folder of `path`, for the block to put in place (rename, link);
    removed when the block ends, if it is still there."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for piece in [data] if isinstance(data, bytes) else data:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write(path: str | os.PathLike, data: bytes | Iterable[bytes], mode: int | None = None) -> None:
    """Replace `path` with `data` in one step (its permissions `mode`, else those mkstemp gives: 0600)."""
    with temporary_beside(path, data, mode) as tmp:
        os.replace(tmp, path)
