"""Field-level differences between two canonical bodies, with deepdiff; equal hashes skip it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.canonical import digest
from reconciler.diagnostics import format_path
from reconciler.redaction import redact


@dataclass(frozen=True)
class FieldChange:
    path: str  # e.g. input.resolution, processRequest.input.data[0].type
    before: Any  # the live value (None when absent)
    after: Any  # the desired value (None when absent)


def changes(desired: dict[str, Any], live: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Every path where `live` differs from `desired`, sorted; sensitive values shown as (sensitive)."""
    if digest(desired) == digest(live):
        return ()
    from deepdiff import DeepDiff

    # threshold 0: always compare dicts key by key (deepdiff otherwise reports a whole object
    # when the two sides share few keys), so every reason names one field
    report = DeepDiff(live, desired, ignore_order=False, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    found = []
    for kind in ("values_changed", "type_changes", "dictionary_item_added", "dictionary_item_removed",
                 "iterable_item_added", "iterable_item_removed"):
        for item in report.get(kind, []):
            before = None if kind in ("dictionary_item_added", "iterable_item_added") else item.t1
            after = None if kind in ("dictionary_item_removed", "iterable_item_removed") else item.t2
            found.append(FieldChange(format_path(tuple(item.path(output_format="list"))), redact(before), redact(after)))
    return tuple(sorted(found, key=lambda c: c.path))
