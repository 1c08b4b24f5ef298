"""`reconciler shards`: what the other commands run over, for people and for a CI matrix."""

from __future__ import annotations

from reconciler.cli.base import FORMAT, cli


@cli.command()
@FORMAT
def shards(fmt: str) -> int:
    """List the shards of reconciler.toml: name, manifest paths, lockfile (JSON for a CI matrix:
    {"shards": [{"name", "paths", "state"}]}).

    Without a reconciler.toml there is one entry, with name null: the defaults every command
    uses then (manifests/ and $RECONCILER_STATE, null when unset). Reads no manifest or lockfile."""
    import os

    from reconciler.manifests.files import DEFAULT_PATHS
    from reconciler.render.shards import show_shards
    from reconciler.shards import load_shards

    configured = load_shards()
    entries = [(s.name, s.paths, s.state) for s in configured.values()]
    show_shards(entries or [(None, DEFAULT_PATHS, os.environ.get("RECONCILER_STATE") or None)], fmt)
    return 0
