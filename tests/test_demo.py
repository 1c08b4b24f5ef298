"""`make demo`'s flow (scripts/demo.sh) runs against a real sandbox and ends converged."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_the_demo_converges_the_examples(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SH_", "AWS_", "RECONCILER_"))}
    env["PYTHON"] = sys.executable
    env["DEMO_OUT"] = str(tmp_path)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # the demo's caches, in their default place, not in the user's
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "5 manifest(s) in 5 file(s) are valid" in out
    assert "Plan: 5 to create" in out and "Apply complete: 5 action(s) done, 0 failed, 0 blocked, 0 deferred." in out
    statuses = [line for line in out.splitlines() if line.startswith("corsica-")]
    assert sum(" DONE " in line for line in statuses) >= 4 and any("created  CREATED" in line for line in statuses)
    assert out.rstrip().endswith("The sandbox stops now.")
    assert "66 tile(s) (66 PROCESSED)" in out
    assert (tmp_path / "corsica-max-ndvi-v1.png").stat().st_size > 10_000
    assert "No changes. Live jobs match the manifests." in out
    kept = {path.name.split("-")[0] for path in (tmp_path / "cache" / "reconciler").glob("*.json")}
    assert kept == {"manifests"}  # the load cache of validate and plan
