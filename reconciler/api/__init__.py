"""Live state: models of the Batch API v1/v2 objects, the rules of create bodies, and the HTTP client
(OAuth session, paging, retries, errors translated at this boundary)."""
