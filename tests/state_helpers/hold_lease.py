"""Hold the lease on LOCATION the way an apply does, until killed:
`python -m tests.state_helpers.hold_lease LOCATION --ttl 2 --who NAME`.

Prints `LEASE <id>` once the lease is held and its heartbeat runs, then sleeps. S3 locations use
boto3's standard chain, so the sandbox's env (AWS_ENDPOINT_URL_S3, keys) must be in the environment.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from reconciler.state.lease import Lease, release_on_signals
from reconciler.state.objects import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("location")
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--who", default="hold-lease-helper")
    args = parser.parse_args()
    # Python leaves SIGINT ignored when its parent ignored it (a background job without job control);
    # a terminal's Ctrl-C is what this stands for, so make it raise KeyboardInterrupt whatever the parent did.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    store, key = open_store(args.location)
    with release_on_signals(), Lease.acquire(store, key, operation="apply", ttl=args.ttl, who=args.who) as lease:
        print(f"LEASE {lease.info.id}", flush=True)
        while True:
            time.sleep(0.05)
            lease.check()


if __name__ == "__main__":
    sys.exit(main())
