"""The Batch API's data, apart from HTTP: the v1 and v2 wire models (`models`), the rules a create
body must follow (`checks`), a live job as the planner sees it (`live`) and the status vocabulary
(`statuses`). Pure: no HTTP, S3, YAML or command-line library. The HTTP client (`reconciler.api`),
the manifests, the engine and the sandbox all build on it (docs/architecture.md)."""

from typing import Literal

# The words every part of the Batch API's data shares, here so that a reader of them (a saved plan,
# the canonical form) need not load the wire models.
ApiVersion = Literal["v1", "v2"]
API_VERSIONS: tuple[ApiVersion, ...] = ("v2", "v1")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"  # the default CRS of a request's bounds
