"""Benchmark: where a first run's loading of N manifests goes (the part of `plan` the load cache
saves), stage by stage, each stage timed in a fresh process (CPU time, the cycle collector at the
console script's threshold) so that no cache of an earlier stage helps a later one.

The manifests are plan_bench's (`sandbox serve --seed N`'s, reconciler.sandbox.seed). Stages: libyaml alone
(ruamel.yaml.clib's raw_parse, no Python objects); libyaml's events as Python objects, which
`read_documents` reads; `read_documents` (those events into plain data); pydantic's validation of
the parsed documents alone; the canonical digests of the loaded bodies alone (`canonical.desired`);
`load` with the load cache off and with it being written; and both again with `read_documents`
answered from memory, which is what loading would cost with a parser that cost nothing.

Run: `.venv/bin/python bench/load_stages.py [N] [--runs R]`; the figures are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = {
    "libyaml": "libyaml alone (raw_parse)",
    "events": "libyaml's event objects (ruamel.yaml.clib's CParser)",
    "read": "read_documents: libyaml's events into plain data",
    "validate": "pydantic's validation of the parsed documents alone",
    "digest": "the canonical digests of the loaded bodies alone",
    "load": "load, load cache off",
    "load-write": "load, load cache written (a first run)",
    "load-noparse": "load with parsing free, load cache off",
    "load-noparse-write": "load with parsing free, load cache written",
}


def stage(name: str, folder: Path) -> float:
    """One stage's CPU seconds, in this (fresh) process."""
    cache = folder / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    os.environ["RECONCILER_CACHE_DIR"] = str(cache) if name.endswith("-write") else "off"
    os.chdir(folder)  # as in a repository: manifests are read only from inside it
    sys.path.insert(0, str(ROOT))
    from _ruamel_yaml import CParser

    from reconciler.canonical import desired
    from reconciler.cli import tuned_collector
    from reconciler.manifests import loader, yamldoc
    from reconciler.manifests.schema import BatchJob

    files = sorted((folder / "manifests").glob("*.yaml"))
    texts = [f.read_text() for f in files]
    documents = [document.data for text in texts for document in yamldoc.read_documents(text)] if name == "validate" else []
    manifests = loader.load([folder / "manifests"]).manifests if name == "digest" else []
    if name.startswith("load-noparse"):
        parsed = {text: yamldoc.read_documents(text) for text in texts}
        loader.read_documents = lambda text, strings: parsed[text]  # what loading costs with parsing free
    with tuned_collector():  # as the console script runs
        start = time.process_time()
        if name == "libyaml":
            for text in texts:
                parser = CParser(text)
                parser.raw_parse()
                parser.dispose()
        elif name == "events":
            for text in texts:
                parser = CParser(text)
                for _ in iter(parser.get_event, None):
                    pass
                parser.dispose()
        elif name == "read":
            for text in texts:
                yamldoc.read_documents(text)
        elif name == "validate":
            for data in documents:
                BatchJob.model_validate(data, context={"unresolved": set()})
        elif name == "digest":
            for manifest in manifests:
                desired(manifest.api, manifest.body)
        else:
            result = loader.load([folder / "manifests"], use_cache=name.endswith("-write"))
            assert len(result.manifests) == len(files) and not result.cached, "every manifest loads, none from a cache"
        return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="where loading N manifests from scratch goes")
    parser.add_argument("count", nargs="?", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)  # one stage, in a child
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(stage(args.stage, args.folder))
        return
    from record import append

    from reconciler.sandbox.seed import manifests

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in manifests(folder / "manifests", args.count):  # plan_bench's manifests, without their jobs
            pass
        for name, label in STAGES.items():
            seconds = [float(subprocess.run([sys.executable, __file__, "--stage", name, "--folder", str(folder)],
                                            capture_output=True, text=True, check=True).stdout)
                       for _ in range(args.runs)]
            rows.append(f"| {label} | median {statistics.median(seconds):.2f} s, "
                        f"{min(seconds):.2f}–{max(seconds):.2f} s ({args.runs} runs) | |")
    append(f"Loading {args.count:,} manifests from scratch, by stage", rows)


if __name__ == "__main__":
    main()
