"""Pydantic models of the Batch API wire format, v1 and v2.

Create bodies are validated strictly (they are what we send; a typo must fail here, not on the
server), with `processRequest` kept open where it is data-source specific. Live objects accept
unknown fields, because the service adds fields over time. Field names are the API's own.
"""

from reconciler.api.models import common, v1, v2

__all__ = ["common", "v1", "v2"]
