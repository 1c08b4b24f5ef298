"""A loaded manifest: what step 2 of loading (`loader.py`) makes of a valid document, and what the
engine plans with. Plain typed data — the header fields, the policy and the create body — made
from the validated model and kept without it: the pure engine imports this module, never the YAML
reading or the models behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reconciler.batch import ApiVersion

# No sensitive paths: one empty set shared by every manifest and live job without any. CPython makes
# a new empty frozenset (216 bytes) each time, and a plan holds one per manifest and per live job.
NOT_SENSITIVE: frozenset[tuple] = frozenset()

State = Literal["created", "analysed", "started", "stopped"]
API_VERSION = "reconciler/v1"  # a manifest's `apiVersion`
KIND = "BatchJob"


@dataclass(frozen=True, slots=True)
class Policy:
    """`spec.policy`: how far the reconciler may go on its own for this job."""

    max_restarts: int = 0  # v1: restart a PARTIAL job up to this many times; v2: re-run a FAILED one
    max_cost_pu: float | None = None  # never start a job whose estimate exceeds this
    on_spec_change: Literal["refuse", "replace"] = "refuse"
    on_remove: Literal["forget", "stop"] = "forget"


@dataclass(frozen=True, slots=True)
class Manifest:
    name: str
    api: ApiVersion
    state: State
    description: str
    policy: Policy
    file: str
    line: int
    body: dict[str, Any]  # the create body to send, evalscript filled in, without `description`
    sensitive: frozenset[tuple]  # paths (from the document root) whose values must never be shown
    desired: tuple[str, str]  # the request digest and the spec hash (reconciler.canonical.desired)
    labels: Mapping[str, str] = field(default_factory=dict)
    evalscript_file: str | None = None  # spec.evalscriptFile, as written (relative to the manifest)

    @property
    def body_sensitive(self) -> frozenset[tuple]:
        """The sensitive paths inside the body (relative to it)."""
        return in_body(self.sensitive)

    @property
    def sent_sensitive(self) -> frozenset[tuple]:
        """The sensitive paths of what is sent: the body's, and ("description",) for the description."""
        body = self.body_sensitive
        return body | {("description",)} if ("spec", "description") in self.sensitive else body

    def header(self) -> dict[str, Any]:
        """The document without its request, as plain data (the load cache keeps it, and its
        models check it again when it is read back)."""
        policy = {"maxRestarts": self.policy.max_restarts, "maxCostPU": self.policy.max_cost_pu,
                  "onSpecChange": self.policy.on_spec_change, "onRemove": self.policy.on_remove}
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": self.name, "labels": dict(self.labels)},
                "spec": {"api": self.api, "state": self.state, "description": self.description,
                         "evalscriptFile": self.evalscript_file, "policy": policy}}


def in_body(sensitive: frozenset[tuple]) -> frozenset[tuple]:
    in_request = frozenset(path[2:] for path in sensitive if path[:2] == ("spec", "request"))
    return in_request or NOT_SENSITIVE
