"""The sandbox's time when it is stepped by hand (`reconciler sandbox serve --manual-clock`).

Step: the sandbox's clock (README, "The sandbox"). By default sandbox time is the real time and the worker
thread moves jobs along as it passes. With a manual clock, sandbox time starts at the real time
and moves only when a test asks (`POST /sandbox/clock {"advance": SECONDS}`), so tests step
through a job's life, a replica's lag or a rate-limit window instead of sleeping and hoping.

A step is synchronous: `advance` runs the worker at every moment something falls due between the
old time and the new one (an analysis ends, a tile finishes), in order, and once more at the new
time, all under the state lock. When it returns, every job is exactly where that much time takes
it and no request saw a half-moved sandbox. There is no worker thread then: what needs no time
(a started job checking its outputs, tiles moving up the queue) also waits for the next step,
which may be `{"advance": 0}`.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.sandbox.worker import Worker


# The clock ticks in 2^-20 s (about a microsecond): its times, and their sums and differences, are
# exact binary fractions. A test told "Retry-After: 700" or "the lag is 0.3 s" that advances by that
# much then reaches the end of the window, instead of landing a rounding error short of it.
TICK = 2.0 ** -20


class ManualClock:
    """Epoch seconds that start at the real time and move forward only through `move_to`, in ticks."""

    def __init__(self, start: float | None = None):
        self._now = _tick_up(time.time() if start is None else start)

    def __call__(self) -> float:
        return self._now

    def move_to(self, moment: float) -> None:
        """On to `moment` (rounded up to a tick, so whatever falls due at `moment` is due then)."""
        self._now = max(self._now, _tick_up(moment))  # never backwards: job timestamps stay ordered


def _tick_up(moment: float) -> float:
    return math.ceil(moment / TICK) * TICK


def advance(clock: ManualClock, worker: Worker, seconds: float) -> float:
    """Move `clock` forward by `seconds`, running `worker` at each moment on the way at which
    something falls due; returns the new time."""
    with worker.state.lock:
        target = clock() + _tick_up(seconds)  # both in ticks: the sum is exact, never short of `seconds`
        while True:
            worker.settle()
            moment = worker.next_due(after=clock())
            if moment is None or moment > target:
                break
            clock.move_to(moment)
        clock.move_to(target)
        worker.settle()
        return clock()
