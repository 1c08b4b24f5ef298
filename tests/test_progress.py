"""Progress while `apply --wait` waits: a line per change in CI logs, a per-job view redrawn in
place on a terminal (a real pseudo-terminal), and what an interrupt leaves behind (the lease
released, the jobs still running at the service named)."""

from __future__ import annotations

import io
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time

from reconciler.operations.live import JobProgress
from reconciler.render.apply import CI_INTERVAL, Progress
from tests.conftest import EXAMPLES, example_job

WAIT = ("apply", "--auto-approve", "--wait", "--poll-interval", "100ms")


def row(name="job", status="PROCESSING", percent=42.0, done=28, total=66, pu=47.3, wanted="started", settled=False,
        elapsed=5.0) -> JobProgress:
    return JobProgress(name, "v2", wanted, status, settled, percent, done, total, pu, elapsed)


def v1_job(folder, name="corsica-max-ndvi-v1"):
    """The v1 example beside `example_job`'s manifest (its evalscripts are there already)."""
    text = (EXAMPLES / "corsica-max-ndvi-v1.yaml").read_text().replace("name: corsica-max-ndvi-v1", f"name: {name}")
    (folder / "manifests" / "v1.yaml").write_text(text)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_a_job_gets_a_line_when_it_changes_at_most_every_interval(capsys):
    clock = Clock()
    progress = Progress(clock)
    assert not progress.tty
    progress([row(percent=0.0, done=0, pu=0.0), row("other", "CREATED", 0.0, 0, 66, None, "created", True, 0.0)])
    progress([row(percent=0.0, done=0, pu=0.0), row("other", "CREATED", 0.0, 0, 66, None, "created", True, 0.0)])
    clock.now += 1
    progress([row(percent=10.0, done=7, pu=9.1)])  # figures moved, the interval has not passed: quiet
    clock.now += CI_INTERVAL
    progress([row(percent=42.4, done=28, pu=47.3, elapsed=15.0)])
    progress([row(percent=42.4, done=28, pu=47.3, elapsed=16.0)])  # nothing changed but time
    clock.now += 1
    progress([row(status="DONE", percent=100.0, done=66, pu=112.3, settled=True, elapsed=17.0)])  # a new status: at once
    assert capsys.readouterr().err.splitlines() == [
        "job: PROCESSING 0% (0/66 tiles) 0.0 PU · 5s",
        "other: CREATED 0% (0/66 tiles) · 0s",
        "job: PROCESSING 42% (28/66 tiles) 47.3 PU · 15s",
        "job: DONE 100% (66/66 tiles) 112.3 PU · 17s",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_view_is_redrawn_in_place_and_fits_the_screen(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("LINES", "6")
    monkeypatch.setenv("COLUMNS", "100")
    progress = Progress()
    assert progress.tty and not progress.colour
    progress([row(f"job-{i}", settled=i % 2 == 0, status="DONE" if i % 2 == 0 else "PROCESSING") for i in range(10)])
    first = terminal.getvalue()
    progress([row(f"job-{i}", settled=True, status="DONE", percent=100.0, done=66) for i in range(10)])
    second = terminal.getvalue()[len(first):]
    assert "\x1b[3" not in first + second  # NO_COLOR: no colour, even on a terminal
    lines = first.split("\n")[:-1]
    assert len(lines) == 5 and all(len(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)) < 100 for line in lines)
    assert [line.split()[1] for line in lines[:3]] == ["job-1", "job-3", "job-5"]  # the moving ones first
    assert "… and 7 more" in lines[3] and "5/10 settled" in lines[4]
    assert second.startswith("\x1b[5F") and "10/10 settled" in second  # back up over the last drawing


def test_apply_wait_without_a_terminal_shows_percent_tiles_and_pu(tmp_path, run_cli, own_sandbox):
    own_sandbox("--tile-seconds", "0.1", "--workers", "4")
    example_job(tmp_path)
    v1_job(tmp_path)
    code, out, err = run_cli(*WAIT)
    assert code == 0, out + err
    assert re.search(r"^corsica-max-ndvi: PROCESSING \d+% \(\d+/66 tiles\) [\d.,]+ PU · \d+s$", err, re.MULTILINE), err
    assert re.search(r"^corsica-max-ndvi: DONE 100% \(66/66 tiles\) 112\.3 PU · \d+s$", err, re.MULTILINE), err
    assert re.search(r"^corsica-max-ndvi-v1: PROCESSING \d+% \(\d+/66 tiles\) · \d+s$", err, re.MULTILINE), err  # no PU in v1
    assert re.search(r"^corsica-max-ndvi-v1: DONE 100% \(66/66 tiles\) · \d+s$", err, re.MULTILINE), err


def test_apply_wait_on_a_terminal_redraws_a_line_per_job_with_a_percentage(tmp_path, own_sandbox, monkeypatch):
    own_sandbox("--tile-seconds", "0.1", "--workers", "4")
    example_job(tmp_path)
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", "40")
    code, screen = _under_a_terminal([sys.executable, "-m", "reconciler", *WAIT], tmp_path)
    assert code == 0, screen
    assert "\x1b[36mPROCESSING" in screen  # colour on a terminal
    text = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    assert re.search(r"\x1b\[2F", text)  # redrawn in place: back over one job line and the summary
    processing = re.findall(r"· corsica-max-ndvi +PROCESSING +(\d+)% +\((\d+)/66 tiles\) +[\d.,]+ PU +\d+s", text)
    assert processing, text[-2000:]
    assert re.search(r"✓ corsica-max-ndvi +DONE +100% +\(66/66 tiles\) +112\.3 PU", text)
    assert "1/1 settled" in text and "Apply complete" in text


def test_an_interrupted_wait_releases_the_lease_and_names_the_jobs_left_running(tmp_path, run_cli, own_sandbox):
    sandbox = own_sandbox("--tile-seconds", "5", "--workers", "1")
    example_job(tmp_path)
    v1_job(tmp_path)
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):  # the second run waits on the same jobs
        # SIGINT back to its default in the child: a run started in the background inherits it ignored
        process = subprocess.Popen([sys.executable, "-m", "reconciler", *WAIT], cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
        output, lines, seen, running = _lines(process.stdout), _lines(process.stderr), [], set()
        while running != {"corsica-max-ndvi", "corsica-max-ndvi-v1"}:
            line = lines.get(timeout=60)
            assert line is not None, "".join(seen)
            seen.append(line)
            if found := re.match(r"(\S+): PROCESSING", line):
                running.add(found.group(1))
        process.send_signal(signum)
        process.wait(timeout=60)
        out, err = "".join(iter(output.get, None)), "".join(seen) + "".join(iter(lines.get, None))
        assert process.returncode == code, out + err
        [line] = [line for line in err.splitlines() if "the lease was released" in line]
        word = "Interrupted" if signum == signal.SIGINT else "Terminated"
        assert line.startswith(f"{word}: the lease was released; still running at the service")
        assert "corsica-max-ndvi (PROCESSING" in line and "corsica-max-ndvi-v1 (PROCESSING" in line
        assert "not locked" in run_cli("lock", "status")[1]
    assert sandbox.process.poll() is None


def _lines(stream) -> queue.Queue:
    """The stream's lines as they come, then None at its end (read on a thread: a blocking read
    would hang the test if the line never came)."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _under_a_terminal(command: list[str], cwd) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal as its stdin, stdout and stderr; its exit code and all it wrote."""
    import pty

    primary, secondary = pty.openpty()
    process = subprocess.Popen(command, cwd=cwd, stdin=secondary, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(primary, 65536)
        except OSError:  # the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(primary)
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
