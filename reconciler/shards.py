"""Shards (`reconciler.toml`): parts of the manifests, each with its own lockfile and so its own
lease, so independent teams or regions reconcile in parallel without contending. The file comes
with the manifests (a pull request can change it), so it is read strictly: shard names follow the
manifest name rule (reconciler.names) and its paths, and a local lockfile path, must stay inside
the repository (reconciler.manifests.files)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.names import NAME_RULE, is_name
from reconciler.settings import InvalidSettings

CONFIG_FILE = "reconciler.toml"
_SHOWN = 80  # characters of a bad shard name quoted in an error: a name just too long shows whole


@dataclass(frozen=True)
class Shard:
    """A part of the manifests with its own lockfile (and so its own lease): teams or regions that
    reconcile in parallel without contending."""

    name: str
    paths: tuple[str, ...]
    state: str


def load_shards(directory: Path | None = None) -> dict[str, Shard]:
    """`[shards.NAME]` tables of reconciler.toml (`paths`, `state`); none when there is no file.
    The file comes with the manifests (a pull request can change it): shard names follow the
    manifest name rule (reconciler.names), and its paths, and a local lockfile path, must stay
    inside the repository (reconciler.manifests.files)."""
    import tomllib

    from reconciler.manifests.files import escape, repository_root

    path = (directory or Path.cwd()) / CONFIG_FILE
    if not path.exists():
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidSettings(f"{path}: {e}") from None
    tables = document.get("shards", {})
    if not isinstance(tables, dict):
        raise InvalidSettings(f"{path}: `shards` must be a table of shards", 'e.g. [shards.agri] with paths and state')
    root, shards = repository_root(path.parent), {}
    for name, table in tables.items():
        if not is_name(name):  # it names lockfiles and CI matrix entries, and reaches messages: checked first
            shown = repr(name[:_SHOWN]) + ("…" if len(name) > _SHOWN else "")
            raise InvalidSettings(f"{path}: the shard name {shown} does not follow the name rule: {NAME_RULE}",
                                  "shard names are checked like manifest names, e.g. [shards.agri]")
        where = f"{path}: shards.{name}"
        if not isinstance(table, dict):
            raise InvalidSettings(f"{where} must be a table with `paths` and `state`", f"e.g. [shards.{name}]")
        unknown = set(table) - {"paths", "state"}
        if unknown:
            raise InvalidSettings(f"{where}: unknown key {sorted(unknown)[0]!r}", "a shard has `paths` and `state`")
        paths, state = table.get("paths"), table.get("state")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise InvalidSettings(f"{where}.paths must be a non-empty list of folders", "e.g. paths = [\"manifests/agri\"]")
        if not isinstance(state, str) or not state:
            raise InvalidSettings(f"{where}.state must be a lockfile URL", "e.g. state = \"s3://bucket/agri.json\"")
        local = [state.removeprefix("file://")] if "://" not in state or state.startswith("file://") else []
        for item, hidden in [*((p, False) for p in paths), *((s, True) for s in local)]:
            problem = escape(path.parent / item, root, hidden)
            if problem is not None:
                raise InvalidSettings(f"{where}: {item} {problem}", "shard paths stay inside the repository")
        shards[name] = Shard(name, tuple(os.path.relpath(path.parent / p) for p in paths), state)
    return shards
