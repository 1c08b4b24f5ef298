"""Recorded state (docs/lockfile.md): the lockfile (model, JSON format, journal), the object stores it
lives in (S3, local file) and the lease that lets one run at a time change live jobs."""
