"""A loaded manifest: what step 2 of loading (`loader.py`) makes of a valid document, and what the
engine plans with. Plain data beside its pydantic model: the pure engine imports this module, never
the YAML reading behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.manifests.schema import BatchJob


@dataclass(frozen=True)
class Manifest:
    job: BatchJob  # validated; its spec.request model is dropped (None): the request is `body`
    file: str
    line: int
    body: dict[str, Any]  # the create body to send, evalscript filled in, without `description`
    sensitive: frozenset[tuple]  # paths (from the document root) whose values must never be shown
    desired: tuple[str, str]  # the request digest and the spec hash (reconciler.canonical.desired)

    @property
    def name(self) -> str:
        return self.job.metadata.name

    @property
    def body_sensitive(self) -> frozenset[tuple]:
        """The sensitive paths inside the body (relative to it)."""
        return in_body(self.sensitive)

    @property
    def sent_sensitive(self) -> frozenset[tuple]:
        """The sensitive paths of what is sent: the body's, and ("description",) for the description."""
        return self.body_sensitive | ({("description",)} if ("spec", "description") in self.sensitive else set())


def in_body(sensitive: frozenset[tuple]) -> frozenset[tuple]:
    return frozenset(path[2:] for path in sensitive if path[:2] == ("spec", "request")) if sensitive else frozenset()
