"""The lease (docs/lockfile.md): `<key>.lease`, created only when absent, so one run at a time may
change live jobs and the lockfile.

It holds `{id, operation, who, created, expires}`. The holder renews it (conditionally on its
ETag) from a heartbeat thread and deletes it (conditionally) when done, in `finally` and on
SIGINT/SIGTERM. A crashed holder's lease blocks only until it expires: the next run deletes it on
that exact version (If-Match its ETag) and creates its own (If-None-Match), so two runs cannot
both take it over. Expiry is judged on each run's clock: keep clocks roughly in sync (NTP).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from reconciler.errors import LeaseHeld, LeaseLost, StateError
from reconciler.state.objects import Blob, ObjectStore, PreconditionFailed

DEFAULT_TTL = 600.0
MAX_BACKOFF = 10.0


@dataclass(frozen=True)
class LeaseInfo:
    id: str
    operation: str
    who: str
    created: str
    expires: str

    def expires_at(self) -> float:
        return _aware(self.expires).timestamp()

    def describe(self) -> str:
        return f"{self.who} ({self.operation}) since {self.created}, lease {self.id}, expires {self.expires}"


def whoami(environ=os.environ) -> str:
    """The CI run when there is one (GitHub Actions), else user@host."""
    if environ.get("GITHUB_ACTIONS") == "true" and environ.get("GITHUB_RUN_ID"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{environ.get('GITHUB_REPOSITORY', '?')}/actions/runs/{environ['GITHUB_RUN_ID']}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def lease_key(state_key: str) -> str:
    return f"{state_key}.lease"


def read_lease(store: ObjectStore, state_key: str) -> tuple[LeaseInfo, str] | None:
    blob = store.get(lease_key(state_key))
    return (_parse(blob, store.url(lease_key(state_key))), blob.etag) if blob else None


def _parse(blob: Blob, where: str) -> LeaseInfo:
    """The lease another run wrote, checked: every field a string, the times ISO 8601."""
    try:
        info = LeaseInfo(**json.loads(blob.data))
        if not all(isinstance(value, str) for value in asdict(info).values()):
            raise TypeError("a field is not a string")
        _aware(info.created)
        info.expires_at()
        return info
    except (ValueError, TypeError, OverflowError, RecursionError) as e:
        problem = "not JSON" if isinstance(e, ValueError) and not str(e).startswith("Invalid isoformat") else str(e)
        raise StateError(f"the lease {where} is unreadable ({problem[:80]})",
                         "if no run holds it, delete that object by hand (e.g. aws s3 rm)") from None


class Lease:
    """A held lease. Use `acquire`; then as a context manager (heartbeat, release on exit)."""

    def __init__(self, store: ObjectStore, state_key: str, info: LeaseInfo, etag: str, ttl: float,
                 clock: Callable[[], float]):
        self.store, self.key, self.info, self.etag, self.ttl, self._clock = store, lease_key(state_key), info, etag, ttl, clock
        self._valid_until = info.expires_at()  # what others judge expiry by (computed before the write)
        self._lock = threading.Lock()
        self._lost: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @classmethod
    def acquire(cls, store: ObjectStore, state_key: str, *, operation: str, ttl: float = DEFAULT_TTL,
                timeout: float = 0.0, who: str | None = None, clock: Callable[[], float] = time.time,
                sleep: Callable[[float], None] = time.sleep) -> Lease:
        """Take the lease, waiting up to `timeout` seconds (capped backoff); LeaseHeld otherwise."""
        deadline, delay = clock() + timeout, 0.25
        while True:
            info = _new_info(operation, who or whoami(), ttl, clock())
            try:
                etag = store.put(lease_key(state_key), _encode(info), if_none_match=True)
                return cls(store, state_key, info, etag, ttl, clock)
            except PreconditionFailed:
                pass
            current = read_lease(store, state_key)
            if current is None:
                continue  # released between our two calls: try again at once
            holder, holder_etag = current
            if holder.expires_at() <= clock():
                with contextlib.suppress(PreconditionFailed):  # only that expired version goes
                    store.delete(lease_key(state_key), if_match=holder_etag)
                continue
            if clock() >= deadline:
                raise LeaseHeld(f"the state is locked by {holder.describe()}",
                                f"wait (--lock-timeout), or if that run is gone: reconciler force-unlock {holder.id}")
            sleep(min(delay, MAX_BACKOFF, max(0.0, deadline - clock())))
            delay = min(delay * 2, MAX_BACKOFF)

    def renew(self) -> None:
        """Push `expires` forward, only over our own version of the lease. A lease that is gone
        (force-unlock deleted it) or is another run's now (a takeover) is lost for good: LeaseLost,
        here and from every later `check`."""
        with self._lock:
            if self._lost:
                raise self._lost_error()
            now = self._clock()
            info = LeaseInfo(**{**asdict(self.info), "expires": _iso(now + self.ttl)})
            try:
                self.etag = self.store.put(self.key, _encode(info), if_match=self.etag)
                self.info, self._valid_until = info, info.expires_at()
            except PreconditionFailed:
                # Both stores refuse an If-Match write over a missing object as over a changed one
                # (S3 answers 412 or 404, objects.S3Store maps both), so a deleted lease lands here too.
                self._lost = "it was broken by force-unlock or taken over by another run while held"
                raise self._lost_error() from None

    def check(self) -> None:
        """Raise LeaseLost if the lease is gone or may be: the heartbeat saw it broken or taken, or
        no renewal has succeeded within its lifetime (store unreachable, process suspended). Call
        before each action."""
        if not self._lost and self._clock() >= self._valid_until:
            self._lost = "it expired: it could not be renewed in time"
        if self._lost:
            raise self._lost_error()

    def _lost_error(self) -> LeaseLost:
        return LeaseLost(f"the lease {self.info.id} was lost ({self._lost}): nothing more was started",
                         "another run may be acting: look at `reconciler lock status`, then run again")

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5)
        with self._lock:
            if self._lost:
                return
            with contextlib.suppress(PreconditionFailed):  # not ours any more: leave it alone
                self.store.delete(self.key, if_match=self.etag)
            self._lost = "it was released"

    def __enter__(self) -> Lease:
        self._heartbeat = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _beat(self) -> None:
        interval = max(0.05, self.ttl / 3)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except (LeaseLost, StateError):
                if self._lost:
                    return


def force_unlock(store: ObjectStore, state_key: str, lease_id: str) -> LeaseInfo:
    """Break the lease with this id (and only that one)."""
    current = read_lease(store, state_key)
    if current is None:
        raise StateError(f"no lease is held on {store.url(state_key)}")
    holder, etag = current
    if holder.id != lease_id:
        raise StateError(f"the lease held is {holder.id}, not {lease_id}; nothing was changed",
                         f"check `reconciler lock status`; the holder is {holder.describe()}")
    try:
        store.delete(lease_key(state_key), if_match=etag)
    except PreconditionFailed:
        raise StateError("the lease changed while being broken; nothing was changed", "look again") from None
    return holder


@contextlib.contextmanager
def release_on_signals() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) raises SystemExit like SIGINT raises KeyboardInterrupt, so the
    `finally` that releases the lease runs either way."""
    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _aware(text: str) -> datetime:
    """An ISO 8601 time with its offset: a time without one would be read in whichever zone the
    reader runs in, and expiry judged hours off (the lockfile refuses one for the same reason)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"Invalid isoformat: {text[:40]!r} has no offset")
    return moment


def _new_info(operation: str, who: str, ttl: float, now: float) -> LeaseInfo:
    return LeaseInfo(id=str(uuid.uuid4()), operation=operation, who=who, created=_iso(now), expires=_iso(now + ttl))


def _encode(info: LeaseInfo) -> bytes:
    return json.dumps(asdict(info), indent=1).encode()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
