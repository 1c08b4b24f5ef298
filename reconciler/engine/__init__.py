"""The engine (docs/architecture.md): pair manifests with live jobs, diff them, plan actions, and say what
apply will send and what it will cost. Pure: functions of (manifests, live jobs, lockfile,
options); no module here imports an HTTP, S3 or YAML library (a test proves it), and the I/O
around it lives in reconciler.operations."""
