"""Live state: models of the Batch API v1 and v2 objects (and, later, the HTTP client)."""
