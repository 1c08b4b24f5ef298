"""View of a running sandbox: where it listens and where its settings are (never the secret)."""

from __future__ import annotations

from reconciler.render import out


def show_sandbox(sandbox, env_file: str | None) -> None:
    out(f"Batch API (v1, v2) on {sandbox.base_url}  ·  S3 on {sandbox.s3_url}")
    out(f"OAuth client id {sandbox.client_id}; the secret is in the env file" if env_file
        else f"OAuth client id {sandbox.client_id}; pass --env-file to get the secret")
    if env_file:
        out(f"Settings written to {env_file}: `set -a; . {env_file}; set +a` to use them")
    if sandbox.options.manual_clock:
        out(f"Manual clock: time moves only by POST {sandbox.base_url}/sandbox/clock "
            '{"advance": SECONDS}')
    if sandbox.options.seed_jobs:
        out(f"{sandbox.options.seed_jobs:,} ready jobs; their manifests are in {sandbox.options.seed_dir} "
            f"(`reconciler state rebuild {sandbox.options.seed_dir}` records them, then plan finds nothing to do)")
    if sandbox.options.data_dir:
        out(f"Jobs are kept in {sandbox.options.data_dir}; S3 objects live in memory only")
    out("Stop with Ctrl-C.")
