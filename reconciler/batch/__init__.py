"""The Batch API's data, apart from HTTP: the v1 and v2 wire models (`models`), the rules a create
body must follow (`checks`), a live job as the planner sees it (`live`) and the status vocabulary
(`statuses`). Pure: no HTTP, S3, YAML or command-line library. The HTTP client (`reconciler.api`),
the manifests, the engine and the sandbox all build on it (docs/architecture.md)."""
