"""Beside refresh and plan: the digest of each live v2 request that matched its manifest in the
last plan, kept between runs by job id, so a plan over 10,000 unchanged jobs does not make the
canonical form and stable JSON of every live request again (about a sixth of a warm plan's CPU).

An entry (id → lastUpdated, digest) is used only while the listing gives the same lastUpdated
for that id. A v2 request cannot change but for its description, which the canonical form leaves
out (`PUT` takes only `description`), so the key is a second guard, not the only one. v1 jobs are
not kept: their listing has no lastUpdated, and v1 lets `PUT` change `output`. Only requests equal
to a manifest with nothing sensitive are kept: their digest is the manifest's own (the load cache
keeps it too), so the file holds nothing a copy of the manifests would not give.

Where: the load cache's folder (`RECONCILER_CACHE_DIR`; `off` turns both off), one file per API
base URL, marshal, replaced atomically; missing or of other code, it is empty (slower, not different).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from reconciler.api.jobs import LiveJob
from reconciler.manifests.cache import LIVE_PREFIX, cache_file, read_entries, write_entries


class LiveDigests:
    """The kept digests for one service: `known` before planning, `save` the matches after."""

    def __init__(self, path: Path | None, entries: dict[str, tuple[str, str]]):
        self.path = path
        self._old = entries

    @classmethod
    def open(cls, base_url: str) -> LiveDigests:
        path = cache_file(LIVE_PREFIX, base_url)
        return cls(path, read_entries(path))

    def known(self, live: Iterable[LiveJob]) -> dict[str, str]:
        """Digests by job id, for the jobs whose lastUpdated is what it was when they were kept."""
        old = self._old
        return {job.id: entry[1] for job in live
                if (entry := old.get(job.id)) is not None and entry[0] == _stamp(job)}

    def save(self, live: Iterable[LiveJob], matched: Mapping[str, str]) -> None:
        """Keep, for each v2 job of this listing, its digest from `matched` (engine.plan.LiveForms)
        or the one kept before for the same lastUpdated (a plan of a few --target names leaves
        the others as they were); jobs no longer listed are dropped."""
        kept = {}
        for job in live:
            stamp = _stamp(job)
            if stamp is None:
                continue
            if job.id in matched:
                kept[job.id] = (stamp, matched[job.id])
            elif (entry := self._old.get(job.id)) is not None and entry[0] == stamp:
                kept[job.id] = entry
        write_entries(self.path, kept, self._old)


def _stamp(job: LiveJob) -> str | None:
    return job.last_updated.isoformat() if job.api == "v2" and job.last_updated is not None else None
