"""Step 0 of loading manifests: which files may be read, and reading them safely (docs/security.md).

Manifests and evalscripts are written by whoever opens a pull request, and what is read from them
ends up in plans posted back on it. So every file read for manifests must resolve, after
symlinks, inside the repository root — the git top-level above the path given (as written), else
the current directory — and not inside a hidden file or folder there (`.git` holds the checkout's
token, `.env` files secrets). Anything else is refused with a message naming the file and the
rule, and its content is read nowhere. Only regular files are opened (never a FIFO or a device),
without blocking, and never beyond the size limits.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from reconciler.diagnostics import Diagnostic
from reconciler.manifests.yamldoc import YamlProblem

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_EVALSCRIPT_BYTES = 1024 * 1024
DEFAULT_PATHS = ("manifests",)
RULE_HINT = "files are read only from inside the repository, outside hidden folders such as .git"


class Found(NamedTuple):
    """A manifest file to read, and the repository root its evalscripts must stay inside."""

    path: str
    root: str


def repository_root(path: str | os.PathLike) -> str:
    """The git top-level above `path` as written (a planted `.git` can only narrow it), resolved;
    else the current directory."""
    start = os.path.abspath(path)
    folder = start if os.path.isdir(start) else os.path.dirname(start)
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return os.path.realpath(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return os.path.realpath(os.getcwd())
        folder = parent


def escape(path: str | os.PathLike, root: str, hidden: bool = False) -> str | None:
    """Why `path` may not be read (None when it may): where it resolves, and the rule it breaks.
    With `hidden`, hidden folders are allowed (a local lockfile in `.reconciler/`), but for `.git`."""
    real = os.path.realpath(path)
    relative = os.path.relpath(real, root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        return f"resolves to {real}, outside the repository ({root})"
    folder = next((part for part in Path(relative).parts if part.startswith(".") and part != "."
                   and (not hidden or part == ".git")), None)
    if folder is not None:
        return f"resolves to {relative} in the repository, under the hidden {folder}"
    return None


def source_of(path: str | os.PathLike) -> str:
    """Where a manifest file (or a folder of them) is, as the lockfile records it: relative to its
    repository root, resolved, in POSIX form ("." for the root itself), so the same file is named
    alike from any working directory or checkout."""
    relative = os.path.relpath(os.path.realpath(path), repository_root(path))
    return Path(relative).as_posix()


def scope_of(paths: Iterable[str | os.PathLike]) -> tuple[str, ...]:
    """The manifest paths a run covers (DEFAULT_PATHS when none are given), as `source_of` names
    them, sorted: a recorded job is in scope when its file is one of them or under one."""
    return tuple(sorted({source_of(path) for path in (tuple(paths) or DEFAULT_PATHS)}))


def discover(paths: Iterable[str | os.PathLike], diagnostics: list[Diagnostic]) -> list[Found]:
    """Every *.yaml/*.yml file under `paths` (files or folders) that may be read, each file once;
    what may not is a diagnostic."""
    found: dict[str, str] = {}
    for raw in paths:
        path, root = str(Path(raw)), repository_root(raw)  # written as pathlib would; children joined as strings
        if not os.path.lexists(path):
            diagnostics.append(Diagnostic(path, 0, 0, "", "no such file or directory"))
        elif (problem := escape(path, root)) is not None:
            diagnostics.append(Diagnostic(path, 0, 0, "", f"not read: it {problem}", RULE_HINT))
        elif os.path.isdir(path):
            folder = "" if path == os.curdir else path  # pathlib's names: "a.yaml", not "./a.yaml"
            for parts, linked in sorted(_manifest_files(path, ())):
                file = os.path.join(folder, *parts)
                problem = escape(file, root) if linked else None
                if problem is not None:
                    diagnostics.append(Diagnostic(file, 0, 0, "", f"not read: this link {problem}", RULE_HINT))
                else:
                    found.setdefault(file, root)
        else:
            found.setdefault(path, root)
    return [Found(path, root) for path, root in found.items()]


def _manifest_files(folder: str, parts: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], bool]]:
    """(relative parts, is a symlink) of every *.yaml/*.yml file under `folder`, hidden files and
    folders left out, symlinked folders not entered. Only a link can lead out of the folder, so
    only links are resolved (10,000 manifests cost no realpath each)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # unreadable folder: nothing in it can be loaded (as pathlib's rglob does)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _manifest_files(entry.path, (*parts, entry.name))
        elif entry.name.endswith((".yaml", ".yml")) and entry.is_file():
            yield (*parts, entry.name), entry.is_symlink()


def read_text(path: str | os.PathLike, limit: int, what: str) -> str:
    return decode(read_bytes(path, limit, what), what)


def read_bytes(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; YamlProblem otherwise. Opened without
    blocking, so a FIFO planted under a manifest's name cannot hang the run."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise YamlProblem(1, 1, f"cannot read the {what}: {e.strerror}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise YamlProblem(1, 1, f"the {what} is not a regular file", "only plain files are read")
        if status.st_size > limit:
            raise YamlProblem(1, 1, f"the {what} is {status.st_size / 2**20:.1f} MiB; the limit is {limit / 2**20:g} MiB",
                              "large areas belong in a GeoPackage input, not inline geometry")
        chunks, total = [], 0
        while chunk := os.read(descriptor, status.st_size + 1):  # one read and the end, unless it grew meanwhile
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise YamlProblem(1, 1, f"the {what} is over the limit of {limit / 2**20:g} MiB")
        return b"".join(chunks)
    except OSError as e:
        raise YamlProblem(1, 1, f"cannot read the {what}: {e.strerror}") from None
    finally:
        os.close(descriptor)


def decode(raw: bytes, what: str) -> str:
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise YamlProblem(line, 1, f"the {what} is binary, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise YamlProblem(line, 1, f"the {what} is not UTF-8 text (byte {e.start})") from None
