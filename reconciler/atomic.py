"""Writing a file whole or not at all: the data goes to a fresh temporary file beside the target,
is flushed to disk, and replaces the target in one rename. A failure at any point leaves the
target as it was and removes the temporary file."""

from __future__ import annotations

import contextlib
import os
import tempfile


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
