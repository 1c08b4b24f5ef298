"""Faults on demand, all seeded so a run can be repeated: tiles that fail, 429 above a request
rate (with `Retry-After` in milliseconds, as the service sends it), random 5xx before or after a
request is handled (the latter loses the answer of a request that took effect), added latency,
404s right after a create (the service's read replicas lag), and stale deletion."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    tile_failure_rate: float = 0.0  # each tile fails with this probability
    v2_failure_threshold: float = 0.0  # a v2 job fails when more than this share of its tiles failed
    error_rate: float = 0.0  # 5xx before handling
    lost_response_rate: float = 0.0  # mutating requests handled, then answered 5xx
    rate_limit: float = 0.0  # requests per second; 0 = unlimited
    latency: float = 0.0  # seconds added to each request
    replica_lag: float = 0.0  # seconds a new job answers 404 to a GET
    stale_after: float | None = None  # seconds after which stale requests are deleted
    refuse_creates: str | None = None  # every create answered 400 with this message (no PU left, no bucket access)


def tile_fails(faults: Faults, job_id: str, tile_id: int, attempt: int) -> bool:
    """Whether this processing of this tile fails: the same answer for the same seed, every time."""
    if faults.tile_failure_rate <= 0:
        return False
    return random.Random(f"{faults.seed}/{job_id}/{tile_id}/{attempt}").random() < faults.tile_failure_rate


class RequestFaults:
    """The per-request faults, shared by the server's threads."""

    def __init__(self, faults: Faults, clock=time.monotonic, sleep=time.sleep):
        self.faults, self._clock, self._sleep = faults, clock, sleep
        self._random = random.Random(faults.seed)
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()

    def before(self) -> tuple[int, int | None] | None:
        """Delay the request; then (status, retry-after ms) if it must be refused, else None."""
        if self.faults.latency > 0:
            self._sleep(self.faults.latency)
        with self._lock:
            if self.faults.rate_limit > 0:
                now = self._clock()
                while self._recent and self._recent[0] <= now - 1.0:
                    self._recent.popleft()
                if len(self._recent) >= self.faults.rate_limit:
                    return 429, max(1, math.ceil((self._recent[0] + 1.0 - now) * 1000))
                self._recent.append(now)
            if self.faults.error_rate > 0 and self._random.random() < self.faults.error_rate:
                return self._random.choice((500, 502, 503)), None
        return None

    def lose_answer(self) -> bool:
        with self._lock:
            return self.faults.lost_response_rate > 0 and self._random.random() < self.faults.lost_response_rate
