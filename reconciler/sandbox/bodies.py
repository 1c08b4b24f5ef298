"""What the sandbox reads from a create or update request before validating it, as the OpenAPI
document describes the service's input (docs/api-facts.md).

Step: the sandbox's routes, between the HTTP request and the create body models. A create body
comes as JSON or as `multipart/form-data` (`MultiPartBatchRequest`, `MultiPartBatchV2Request`):
the part `request` holds the JSON body, an optional part `evalscript` the evalscript, which then
need not be in `processRequest`. v1 still takes the deprecated top-level `tilingGridId` and
`resolution`, "moved to tilingGrid": they become `tilingGrid` before validation, so the stored
request reads as the service shows it. A PUT changes `description`; in v1 also
`output.collectionId` (`BatchProcessRequestUpdatePayload`). Refusals are `jobs.Refused`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import request

from reconciler.sandbox.jobs import Refused

_MOVED_TO_TILING_GRID = {"tilingGridId": "id", "resolution": "resolution"}  # v1's deprecated fields


def create_body(api: str) -> dict:
    """The create body of the current request, whichever way it was sent."""
    if request.mimetype == "multipart/form-data":
        body = _multipart_body()
    else:
        body = json_object(request.get_json(silent=True))
    return _tiling_grid_moved(body) if api == "v1" else body


def json_object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise Refused(400, "The request body must be a JSON object")
    return body


def _multipart_body() -> dict:
    text = _part("request")
    if text is None:
        raise Refused(400, "A multipart request needs a part named `request` holding the JSON body")
    try:
        body = json_object(json.loads(text))
    except ValueError:
        raise Refused(400, "The part `request` is not JSON") from None
    evalscript = _part("evalscript")
    if evalscript is not None and isinstance(body.get("processRequest"), dict):
        body["processRequest"] = {**body["processRequest"], "evalscript": evalscript}
    return body


def _part(name: str) -> str | None:
    """A form part as text, sent as a plain field or as a file."""
    if name in request.form:
        return request.form[name]
    if name in request.files:
        try:
            return request.files[name].read().decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, f"The part `{name}` is not UTF-8 text") from None
    return None


def _tiling_grid_moved(body: dict) -> dict:
    """v1's deprecated `tilingGridId`/`resolution` carried into `tilingGrid` (a value given both
    ways must agree); the rest of the body is left to validation."""
    moved = {new: body[old] for old, new in _MOVED_TO_TILING_GRID.items() if old in body}
    if not moved:
        return body
    grid = body.get("tilingGrid")
    if grid is None:
        grid = {}
    elif not isinstance(grid, dict):
        return body  # validation refuses the `tilingGrid` itself
    for old, new in _MOVED_TO_TILING_GRID.items():
        if new in moved and new in grid and grid[new] != moved[new]:
            raise Refused(400, f"Invalid request: `{old}` (deprecated) disagrees with `tilingGrid.{new}`")
    rest = {key: value for key, value in body.items() if key not in _MOVED_TO_TILING_GRID}
    return {**rest, "tilingGrid": {**moved, **grid}}


def edited_request(api: str, current: dict, body: dict) -> dict | None:
    """The request as a PUT with `body` leaves it, or None when the body changes nothing the
    version lets change (other fields are ignored, as the service ignores them)."""
    if "description" in body and not isinstance(body["description"], str):
        raise Refused(400, "`description` must be a string")
    edits = "description" in body or (api == "v1" and "output" in body)
    if not edits:
        return None
    edited = {**current, "description": body["description"]} if "description" in body else dict(current)
    if api == "v1" and "output" in body:
        edited = _collection_linked(edited, body["output"])
    return edited


def _collection_linked(current: dict, output: Any) -> dict:
    """v1 PUT `output`: `collectionId` links the request to a batch collection, its absence (or
    null) unlinks it. A collection takes COG output, and not with `createCollection`."""
    if not isinstance(output, dict):
        raise Refused(400, "`output` must be an object")
    collection = output.get("collectionId")
    if collection is not None and (not isinstance(collection, str) or not collection.strip()):
        raise Refused(400, "`output.collectionId` must be a collection id (a non-empty string) or null")
    if "output" not in current:  # `bucketName` or `zarrOutput`: no output to link, nothing to unlink
        if collection is None:
            return current
        raise Refused(400, "`output.collectionId` needs `output.cogOutput: true`; this request has no `output`")
    linked = dict(current["output"] or {})
    if collection is None:
        linked.pop("collectionId", None)
    elif not linked.get("cogOutput"):
        raise Refused(400, "`output.collectionId` needs `output.cogOutput: true`")
    elif linked.get("createCollection"):
        raise Refused(400, "Only one of `createCollection` and `collectionId` may be specified")
    else:
        linked["collectionId"] = collection
    return {**current, "output": linked}
