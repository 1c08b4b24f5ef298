"""A large account at once (`sandbox serve --seed N`): N v2 jobs made ready in the sandbox's state
without N requests, each marked for a manifest `seed-NNNNNN` that is written, with its evalscript,
into a folder. Planning that folder against the sandbox (after `reconciler state rebuild` recovers
the lockfile from the markers) finds nothing to change: the benchmarks and users try account scale
this way.

The manifests are JSON, which is YAML; each job's request is the body its manifest loads to, so
the two compare equal. The jobs stay CREATED (the manifests want `created`): nothing runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler.batch import CRS84
from reconciler.names import marker
from reconciler.sandbox.jobs import new_job
from reconciler.sandbox.store import SandboxState

EVALSCRIPT_FILE = "evalscripts/ndvi.js"
EVALSCRIPT = """//VERSION=3
// NDVI of the last acquisition (one FLOAT32 band): the seeded jobs all run it.
function setup() {
  return {
    input: [{ bands: ["B04", "B08"] }],
    output: [{ id: "default", bands: 1, sampleType: "FLOAT32" }],
  };
}

function evaluatePixel(s) {
  const sum = s.B08 + s.B04;
  return [sum === 0 ? 0 : (s.B08 - s.B04) / sum];
}
"""


def name_of(index: int) -> str:
    return f"seed-{index:06d}"


def body_of(index: int) -> dict[str, Any]:
    """The create body of job `index` (without its evalscript and description): one small area each."""
    west, south = 8.5 + (index % 100) * 0.01, 41.5 + (index // 100 % 100) * 0.01
    return {
        "processRequest": {
            "input": {"bounds": {"bbox": [round(west, 2), round(south, 2), round(west + 0.01, 2), round(south + 0.01, 2)],
                                 "properties": {"crs": CRS84}},
                      "data": [{"type": "sentinel-2-l2a", "dataFilter": {"timeRange": {
                          "from": "2019-04-01T00:00:00Z", "to": "2019-06-30T00:00:00Z"}}}]},
            "output": {"responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]},
        },
        "input": {"type": "tiling-grid", "id": 0, "resolution": 60.0},
        "output": {"type": "raster", "delivery": {"s3": {"url": f"s3://sandbox-seeded/{name_of(index)}"}}},
    }


def seed(state: SandboxState, count: int, folder: Path, now: float, random_seed: int = 0) -> None:
    """Add `count` ready jobs to `state` and write their manifests into `folder` (made if missing)."""
    with state.lock:
        for name, description, body in manifests(folder, count):
            request = {**body, "processRequest": {**body["processRequest"], "evalscript": EVALSCRIPT},
                       "description": f"{description} {marker(name)}"}
            state.add(new_job("v2", request, now, state.next_sequence(), random_seed))


def manifests(folder: Path, count: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Write the `count` manifests (and their evalscript) into `folder`, yielding each one's name,
    description and create body (without evalscript and description) as it is written. Seeded
    manifests of an earlier, larger seed are removed, so the folder holds exactly these jobs.

    Plain writes, not atomic ones: these are sample files made afresh at each start, which nothing
    reads before the sandbox announces them, so a flush and a rename per file would buy nothing."""
    (folder / "evalscripts").mkdir(parents=True, exist_ok=True)
    (folder / EVALSCRIPT_FILE).write_text(EVALSCRIPT)
    for stale in folder.glob("seed-*.yaml"):
        if stale.stem[len("seed-"):].isdigit() and int(stale.stem[len("seed-"):]) >= count:
            stale.unlink()
    for index in range(count):
        name, body = name_of(index), body_of(index)
        description = f"Seeded job {index:,}"
        manifest = {"apiVersion": "reconciler/v1", "kind": "BatchJob", "metadata": {"name": name},
                    "spec": {"api": "v2", "state": "created", "description": description,
                             "evalscriptFile": EVALSCRIPT_FILE, "request": body}}
        (folder / f"{name}.yaml").write_text(json.dumps(manifest, separators=(",", ":")) + "\n")
        yield name, description, body
