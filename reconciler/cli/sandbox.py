"""`reconciler sandbox serve`."""

from __future__ import annotations

import click

from reconciler.cli.base import RATE, Duration, cli


@cli.group()
def sandbox() -> None:
    """The local stand-in of the Batch API and S3, for trying manifests offline."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only by default).")
@click.option("--port", type=int, default=0, show_default=True, help="Batch API port; 0 picks a free one.")
@click.option("--s3-port", type=int, default=0, show_default=True, help="S3 port; 0 picks a free one.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=str),
              help="Write SH_*, AWS_* and RECONCILER_STATE here once both servers accept connections.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=str),
              help="Keep jobs (and generated credentials) in SQLite here across restarts. S3 objects stay in memory.")
@click.option("--client-id", help="OAuth client id (default: generated).")
@click.option("--client-secret", help="OAuth client secret (default: generated).")
@click.option("--token-ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Token lifetime, seconds.")
@click.option("--speed", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Divides every phase duration (10 = ten times faster).")
@click.option("--manual-clock", is_flag=True,
              help="Sandbox time starts at the real time and moves only by POST /sandbox/clock "
                   '{"advance": SECONDS}, which answers once every job has caught up (for tests).')
@click.option("--analysis-seconds", type=click.FloatRange(min=0), default=0.3, show_default=True,
              help="How long an analysis takes (ANALYSING before ANALYSIS_DONE), before --speed.")
@click.option("--tile-seconds", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Processing time of one tile.")
@click.option("--workers", type=click.IntRange(min=1), default=8, show_default=True, help="Tiles processed at once.")
@click.option("--random-seed", "seed", type=int, default=0, show_default=True,
              help="Seed of every random fault, and of job ids: a seeded run repeats exactly.")
@click.option("--tile-failure-rate", type=RATE, default=0.0, show_default=True,
              help="Fault: share of tile runs that fail (v1 → PARTIAL, or FAILED when all fail).")
@click.option("--v2-failure-threshold", type=RATE, default=0.0, show_default=True,
              help="A v2 job FAILS when more than this share of its tiles failed.")
@click.option("--error-rate", type=RATE, default=0.0, show_default=True, help="Fault: share of API requests answered 5xx.")
@click.option("--lost-response-rate", type=RATE, default=0.0, show_default=True,
              help="Fault: share of API writes that take effect but are answered 5xx.")
@click.option("--rate-limit", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Fault: requests per second above which the answer is 429 with Retry-After (ms); 0 = off.")
@click.option("--latency", type=Duration(), default=0.0, help="Fault: time added to every request (e.g. 50ms).")
@click.option("--replica-lag", type=Duration(), default=0.0, help="Fault: a new job answers 404 to GET this long.")
@click.option("--refuse-creates", metavar="MESSAGE", default=None,
              help="Fault: answer every create 400 with MESSAGE (also PUT /sandbox/faults while running).")
@click.option("--stale-after", type=Duration(), default=None,
              help="Delete finished, failed and never-started requests this long after their last change.")
@click.option("--s3-write-latency", type=Duration(), default=0.0,
              help="Fault: time added inside every S3 object write (widens race windows in tests).")
@click.option("--s3-ignore-conditions", is_flag=True,
              help="Fault: S3 accepts If-Match/If-None-Match writes without checking them, like some "
                   "S3-compatible stores (the reconciler refuses to take a lease on it).")
@click.option("--seed", "seed_jobs", type=click.IntRange(min=0), default=0, show_default=True, metavar="N",
              help="Start with N ready v2 jobs (CREATED), each marked for a manifest seed-NNNNNN written to "
                   "--seed-dir: an account of any size without N requests.")
@click.option("--seed-dir", type=click.Path(file_okay=False, path_type=str), default="seeded-manifests",
              show_default=True, help="Where --seed writes the manifests of its jobs (named on start).")
def sandbox_serve(env_file: str | None, data_dir: str | None, client_id: str | None, client_secret: str | None,
                  host: str, port: int, s3_port: int, token_ttl: int, s3_write_latency: float,
                  s3_ignore_conditions: bool, manual_clock: bool, seed_jobs: int, seed_dir: str, **knobs) -> int:
    """Serve the sandbox until Ctrl-C or SIGTERM.

    Jobs live in memory unless --data-dir is given; S3 objects always live in memory.

    \b
    Besides the Batch API, the sandbox answers (no token needed):
      GET  /sandbox/stats    request counts per endpoint
      PUT  /sandbox/faults   change faults while running, e.g. {"refuse_creates": "no PUs left"}
      GET  /sandbox/clock    the sandbox time: {"now": epoch seconds, "time": ISO 8601, "manual": bool}
      POST /sandbox/clock    with --manual-clock: {"advance": SECONDS} moves the time on and, before
                             answering, every job as far as that time takes it (analyses, tiles,
                             stale deletion); the rate limit, Retry-After and replica lag follow
                             it too. {"advance": 0} runs what is due now. Tokens expire in real time."""
    from pathlib import Path

    from reconciler.render.sandbox import show_sandbox
    from reconciler.sandbox.faults import Faults
    from reconciler.sandbox.server import SandboxOptions, serve
    from reconciler.sandbox.worker import Timing

    timing = Timing(**{k: knobs.pop(k) for k in ("analysis_seconds", "tile_seconds", "workers", "speed")})
    options = SandboxOptions(host=host, port=port, s3_port=s3_port, client_id=client_id, client_secret=client_secret,
                             token_ttl=token_ttl, timing=timing, faults=Faults(**knobs), s3_write_latency=s3_write_latency,
                             s3_ignore_conditions=s3_ignore_conditions, data_dir=Path(data_dir) if data_dir else None,
                             manual_clock=manual_clock, seed_jobs=seed_jobs, seed_dir=Path(seed_dir) if seed_jobs else None)
    serve(options, Path(env_file) if env_file else None, lambda s: show_sandbox(s, env_file))
    return 0
