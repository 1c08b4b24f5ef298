"""Client-side pacing under a rate limit: what the session does after a 429 so that parallel
requests run at the service's limit instead of bouncing off it."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable


class Pacer:
    """Spaces the session's requests once the service has said "too many" (429).

    Until the first 429 nothing waits. A 429 holds every caller until its Retry-After, and sets
    the spacing to 1 / (95 % of the other requests sent in the last second): that count is what the
    service let through, so a single client settles just under its limit. Later 429s measure again
    and the highest count wins: requests delayed on their way arrive bunched and get one refused
    while fewer were sent, which says nothing about the limit. With fewer than five sent the count
    says little, and only Retry-After is obeyed. A minute without a 429 halves the spacing and
    forgets the measurements, to find a limit that rose or fell.
    """

    WINDOW = 1.0
    SHARE = 0.95
    SAMPLES = 5
    CALM = 60.0

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]):
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()  # when requests were let go, the last second of them
        self.interval = 0.0
        self._measured = 0  # the most requests the service let through in a second, as seen
        self._next = -math.inf
        self._last_refusal = -math.inf

    def turn(self) -> float:
        """Wait for this request's turn; returns the moment it was let go (to name it in `refused`)."""
        with self._lock:
            now = self._clock()
            if self.interval and now - self._last_refusal > self.CALM:
                self.interval, self._measured, self._last_refusal = self.interval / 2, 0, now
            due = max(now, self._next)
            self._next = due + self.interval
            self._sent.append(due)
            while self._sent[0] < due - self.WINDOW:
                self._sent.popleft()
        if due > now:
            self._sleep(due - now)
        return due

    def refused(self, sent: float, retry_after: float) -> None:
        """The request let go at `sent` was answered 429: hold everyone, and measure the limit."""
        with self._lock:
            now = self._clock()
            if sent in self._sent:
                self._sent.remove(sent)
            while self._sent and self._sent[0] < now - self.WINDOW:
                self._sent.popleft()
            self._measured = max(self._measured, len(self._sent))
            if self._measured >= self.SAMPLES:
                self.interval = self.WINDOW / (self.SHARE * self._measured)
            self._next = max(self._next, now + retry_after)
            self._last_refusal = now
