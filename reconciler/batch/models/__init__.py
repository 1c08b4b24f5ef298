"""Pydantic models of the Batch API wire format, v1 and v2.

Create bodies are validated strictly (they are what we send; a typo must fail here, not on the
server), down to each data collection's `dataFilter` and `processing` (`datasets`). Live objects
accept unknown fields, because the service adds fields over time. Field names are the API's own.
"""

from reconciler.batch.models import common, datasets, v1, v2

__all__ = ["common", "datasets", "v1", "v2"]
