"""Typed calls of the Batch API: one class per API version, on top of `ApiSession`.

Live-state I/O (`api/` in docs/architecture.md). The engine's refresh lists every job with one paged listing
per version (`iter_tasks`, `iter_requests`; never a GET per job); apply creates, updates and acts
through the other calls, usually by way of the version-neutral `api/jobs.py`. Answers are parsed
with `api/models`; a malformed answer becomes ApiUnavailable (or, for a create,
CreateOutcomeUnknown), never a pydantic error. A version is a base path plus its calls: `V2Client`
(`/api/v2/batch`) and `V1Client` (`/api/v1/batch`) are the two subclasses of `BatchApiVersion`.

The reading calls take `model=`, a subclass of the strict model to parse with instead (`api/jobs.py`
passes variants that keep a status the models do not know yet, so one new status cannot fail a
whole refresh).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from reconciler.api.errors import ApiUnavailable, CreateOutcomeUnknown
from reconciler.api.session import ApiSession
from reconciler.batch.models import common, v1, v2
from reconciler.settings import ApiSettings

M = TypeVar("M", bound=BaseModel)

_MALFORMED_HINT = ("the service's answer does not have the shape the Batch API documents; check that "
                   "SH_BASE_URL points at a Sentinel Hub deployment")
_SLOW_LISTING_HINT = ("the service answers its listing too slowly or never ends it; if the account really has "
                      "that many jobs, set RECONCILER_LIST_TIMEOUT to a longer duration (e.g. 30m)")


class BatchApiVersion:
    """One version of the Batch API under `base_path`: the request, paging and parsing code that
    every version shares, and the tiling grids that every version lists. `clock` (monotonic
    seconds) times a listing against `list_deadline`."""

    base_path: ClassVar[str]

    def __init__(self, session: ApiSession, clock: Callable[[], float] = time.monotonic):
        self._session = session
        self._clock = clock

    def tiling_grids(self) -> list[common.TilingGrid]:
        """Every tiling grid the deployment offers (all pages)."""
        return list(self._pages("/tilinggrids", common.TilingGrid))

    def tiling_grid(self, grid_id: int) -> common.TilingGrid:
        return self._fetch("GET", f"/tilinggrids/{int(grid_id)}", common.TilingGrid)

    # -- shared by the versions ------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._session.request(method, self.base_path + path, **kwargs)

    def _fetch(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        """Call, then parse the answer as `model`. A create's unparseable answer still means created."""
        data = self._call(method, path, **kwargs)
        return self._parse(model, data, method, path, created=kwargs.get("idempotent") is False)

    def _parse(self, model: type[M], data: Any, method: str, path: str, *, created: bool = False) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            cls = CreateOutcomeUnknown if created else ApiUnavailable
            raise cls(f"unexpected answer: {_first_problem(exc)}", method=method, path=self.base_path + path,
                      hint=CreateOutcomeUnknown.default_hint if created else _MALFORMED_HINT) from None

    def _pages(self, path: str, model: type[M], params: Mapping[str, Any] | None = None,
               page_size: int | None = None) -> Iterator[M]:
        """Every item of a paged listing: pass `links.nextToken` back as `viewtoken` until it is absent.
        A listing that repeats a page, passes `max_pages` pages or is still going `list_deadline`
        seconds after it began raises ApiUnavailable. The deadline is checked between pages, so a
        listing ends within it plus one page's own bounds (`request_deadline`, retries)."""
        query = {k: v for k, v in {"count": page_size, **(params or {})}.items() if v is not None}
        seen: set[str] = set()
        limit = self._session.settings.max_pages
        deadline = self._session.settings.list_deadline
        started = self._clock()
        while True:
            # the page's model is chosen at run time (`model`), which a static type cannot name
            page = self._fetch("GET", path, common.Page[model], params=query)  # type: ignore[valid-type]
            yield from page.data
            token = page.links.nextToken
            if not token or not page.data:
                return
            # A server bug (or a hostile one) would otherwise make the refresh loop forever.
            if token in seen:
                raise ApiUnavailable("the listing repeats a page (the same nextToken came back)",
                                     method="GET", path=self.base_path + path, hint=_MALFORMED_HINT)
            if len(seen) + 1 >= limit:
                raise ApiUnavailable(f"the listing did not end within {limit} pages (max_pages): every page "
                                     "names a next one", method="GET", path=self.base_path + path,
                                     hint=_MALFORMED_HINT)
            seen.add(token)
            # Each page may come within its own deadline, slowly, forever: the whole listing has one too.
            if self._clock() - started >= deadline:
                raise ApiUnavailable(f"the listing did not end within {deadline:g} s (list_deadline): "
                                     f"{len(seen)} page(s) read, and each names a next one",
                                     method="GET", path=self.base_path + path, hint=_SLOW_LISTING_HINT)
            query["viewtoken"] = token

    def _act(self, request_id: str, action: str) -> None:
        # Retried like a read: repeating an action never creates or pays for anything twice (at
        # worst the repeat answers 400 because the first one already changed the status).
        self._call("POST", self._item("/process", request_id, action))

    @staticmethod
    def _item(collection: str, item_id: str, *action: str) -> str:
        # Ids come from manifests' lockfile and the service; quoting keeps one from escaping the path.
        return "/".join((collection, quote(str(item_id), safe=""), *action))


class V2Client(BatchApiVersion):
    """Batch API v2 (`/api/v2/batch`): tasks, their lifecycle actions, tiling grids."""

    base_path = "/api/v2/batch"

    def create(self, body: Mapping[str, Any], *, model: type[v2.Task] = v2.Task) -> v2.Task:
        """POST a create body (as `v2.CreateBody` describes it). Sent once: when the outcome is lost
        it raises CreateOutcomeUnknown and the caller looks the task up instead of re-posting."""
        return self._fetch("POST", "/process", model, json=dict(body), idempotent=False)

    def get(self, task_id: str, *, model: type[v2.Task] = v2.Task) -> v2.Task:
        return self._fetch("GET", self._item("/process", task_id), model)

    def iter_tasks(self, *, search: str | None = None, sort: str | None = None, page_size: int = 100,
                   model: type[v2.Task] = v2.Task) -> Iterator[v2.Task]:
        """Every task of the account, lazily, page by page. `sort`: created, created:desc, status, status:desc."""
        return self._pages("/process", model, {"search": search, "sort": sort}, page_size)

    def update_description(self, task_id: str, description: str) -> dict[str, Any]:
        """PUT the only mutable field; the answer is the task's *request*, not the task."""
        path = self._item("/process", task_id)
        data = self._call("PUT", path, json={"description": description})
        if not isinstance(data, dict):
            raise ApiUnavailable("unexpected answer: expected the updated request as a JSON object",
                                 method="PUT", path=self.base_path + path, hint=_MALFORMED_HINT)
        return data

    def analyse(self, task_id: str) -> None:
        self._act(task_id, "analyse")

    def start(self, task_id: str) -> None:
        self._act(task_id, "start")

    def stop(self, task_id: str) -> None:
        self._act(task_id, "stop")


class V1Client(BatchApiVersion):
    """Batch API v1 (`/api/v1/batch`, deprecated, still in use): batch requests, their lifecycle
    actions (cancel and restartpartial instead of v2's stop), deletion, tiles, tiling grids."""

    base_path = "/api/v1/batch"

    def create(self, body: Mapping[str, Any], *,
               model: type[v1.BatchRequest] = v1.BatchRequest) -> v1.BatchRequest:
        """POST a create body (as `v1.CreateBody` describes it). Sent once, like v2's: a lost outcome
        raises CreateOutcomeUnknown and the caller looks the request up instead of re-posting."""
        return self._fetch("POST", "/process", model, json=dict(body), idempotent=False)

    def get(self, request_id: str, *, model: type[v1.BatchRequest] = v1.BatchRequest) -> v1.BatchRequest:
        return self._fetch("GET", self._item("/process", request_id), model)

    def iter_requests(self, *, search: str | None = None, sort: str | None = None, page_size: int = 100,
                      model: type[v1.BatchRequest] = v1.BatchRequest) -> Iterator[v1.BatchRequest]:
        """Every batch request of the account, lazily, page by page (`viewtoken`, as in v2)."""
        return self._pages("/process", model, {"search": search, "sort": sort}, page_size)

    def update_description(self, request_id: str, description: str, *,
                           model: type[v1.BatchRequest] = v1.BatchRequest) -> v1.BatchRequest:
        """PUT the only mutable field; unlike v2, the answer is the whole updated request."""
        return self._fetch("PUT", self._item("/process", request_id), model, json={"description": description})

    def delete(self, request_id: str) -> None:
        """DELETE the request (204). Retried like a read: if a lost answer hid a success, the repeat
        answers NotFound."""
        self._call("DELETE", self._item("/process", request_id))

    def analyse(self, request_id: str) -> None:
        self._act(request_id, "analyse")

    def start(self, request_id: str) -> None:
        self._act(request_id, "start")

    def cancel(self, request_id: str) -> None:
        self._act(request_id, "cancel")

    def restart_partial(self, request_id: str) -> None:
        """Re-process the FAILED tiles of a PARTIAL request; BadRequest in any other status."""
        self._act(request_id, "restartpartial")

    def iter_tiles(self, request_id: str, *, status: str | None = None, page_size: int = 100,
                   model: type[v1.Tile] = v1.Tile) -> Iterator[v1.Tile]:
        """The tiles of a request, lazily, page by page; `status` (a `v1.TileStatus`) filters on the server."""
        path = self._item("/process", request_id, "tiles")
        return self._pages(path, model, {"status": None if status is None else str(status)}, page_size)

    def get_tile(self, request_id: str, tile_id: int, *, model: type[v1.Tile] = v1.Tile) -> v1.Tile:
        return self._fetch("GET", self._item("/process", request_id, "tiles", str(int(tile_id))), model)


class BatchClient:
    """The Batch API for one account: `.v2` and `.v1` share one session, so one token and one
    retry policy. `clock` (monotonic seconds) times listings against their deadline."""

    def __init__(self, settings: ApiSettings | None = None, *, session: ApiSession | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if session is None:
            if settings is None:
                raise TypeError("BatchClient needs ApiSettings or an ApiSession")
            session = ApiSession(settings)
        self.session = session
        self.v2 = V2Client(session, clock)
        self.v1 = V1Client(session, clock)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> BatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_problem(exc: ValidationError) -> str:
    # Location and message only: the input value may hold a delivery secret the service echoed.
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
