"""sentinelhub-py, unchanged, against the sandbox using only the env file: the reference client
must be able to create, read, page, update, analyse, start and stop, and list tiling grids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, time
    from sentinelhub import SHConfig
    from sentinelhub.api.batch import BatchProcessClient, BatchRequestStatus, monitor_batch_process_analysis

    body = json.loads(open(BODY_FILE).read())
    client = BatchProcessClient(config=SHConfig())
    out = {}
    info = client.client.get_json_dict(client._get_processing_url(), post_values=body, use_session=True)
    request = client.get_request(info["id"])
    out["created"] = request.status.value
    client.update_request(request, "renamed by sentinelhub-py")
    out["description"] = client.get_request(request).request["description"]
    ids = [r.request_id for r in client.iter_requests(search="sentinelhub-py-paging", count=100)]
    out["paged"] = len(ids)
    client.start_analysis(request)
    out["analysed"] = monitor_batch_process_analysis(request, client, sleep_time=5).status.value
    client.start_job(request)
    for _ in range(400):
        status = client.get_request(request).status
        if status == BatchRequestStatus.PROCESSING:
            break
        time.sleep(0.05)
    client.stop_job(request)
    out["stopped"] = client.get_request(request).status.value
    out["grids"] = [g["id"] for g in client.iter_tiling_grids()]
    out["grid0"] = client.get_tiling_grid(0)["properties"]["tileWidth"]
    print(json.dumps(out))
""")


def test_sentinelhub_py_works_unchanged_with_the_env_file(tmp_path):
    from tests.conftest import SandboxProcess
    from tests.test_sandbox_v2 import create, example_body

    sandbox = SandboxProcess(tmp_path, "--tile-seconds", "1", "--workers", "1")
    try:
        http = sandbox.http()
        for i in range(120):  # more than one page (sentinelhub-py follows links.nextToken)
            create(http, example_body("corsica-geopackage", f"sentinelhub-py-paging {i}"))
        body_file = tmp_path / "body.json"
        body_file.write_text(json.dumps(example_body("corsica-max-ndvi", "created by sentinelhub-py")))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SH_", "AWS_", "XDG_"))}
        env.update(sandbox.env)  # only what the env file says
        script = f"BODY_FILE = {str(body_file)!r}\n" + SCRIPT
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        sandbox.stop()
    assert out == {
        "created": "CREATED",
        "description": "renamed by sentinelhub-py",
        "paged": 120,
        "analysed": "ANALYSIS_DONE",
        "stopped": "STOPPED",
        "grids": [0, 1, 2, 3, 6, 7],
        "grid0": 20040.0,
    }
