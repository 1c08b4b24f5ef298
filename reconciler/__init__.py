"""reconciler: a GitOps reconciler for the Sentinel Hub Batch Processing API.

Desired batch jobs live as YAML manifests in git; `plan` diffs them against the live batch
requests and `apply` converges the live side. docs/architecture.md says how.
"""

__version__ = "0.1.0"
