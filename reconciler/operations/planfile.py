"""Saved plans (`plan --out FILE`, `apply FILE`, `show FILE`), on disk: the plan's actions, with
the job card of each create and replace, plus what it was made from — the lockfile's lineage and
serial, a fingerprint of the live jobs it saw, the manifest paths and options. The file is never
trusted on its own: apply plans again and compares (operations/run.py), and `show` only displays
it. It is read through a strict model, so a malformed file is one error naming the field. No
secret is in it: bodies are not saved, only digests of what each action sends (secrets keyed by a
seal only the account's client secret gives, engine/payload.py), and cards hold "(sensitive)"
where the manifest did."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler import __version__
from reconciler.engine.actions import Action, JobCard, Kind, Plan, Step, Unmanaged
from reconciler.engine.diff import FieldChange
from reconciler.errors import ReconcilerError

FORMAT = "reconciler-plan"
VERSION = 1


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    paths: tuple[str, ...]
    journal_seq: int
    allow_replace: bool
    targets: tuple[str, ...] | None


def is_plan_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return f'"format": "{FORMAT}"'.encode() in head


def save(saved: SavedPlan, path: str) -> None:
    document = {"format": FORMAT, "formatVersion": VERSION, "reconcilerVersion": __version__,
                "paths": list(saved.paths), "journalSeq": saved.journal_seq, "allowReplace": saved.allow_replace,
                "targets": list(saved.targets) if saved.targets is not None else None, "plan": _plan(saved.plan)}
    text = json.dumps(document, indent=1)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".plan.")
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def load(path: str) -> SavedPlan:
    """The saved plan at `path`; a ReconcilerError (one line) when it is not one, or is damaged."""
    hint = "make it with `reconciler plan --out FILE`"
    try:
        text = Path(path).read_text(encoding="utf-8")
        head = json.loads(text)
    except (OSError, ValueError, RecursionError) as e:
        raise ReconcilerError(f"{path} is not a usable saved plan ({e})", hint) from None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ReconcilerError(f"{path} is not a usable saved plan (not a saved plan)", hint)
    if head.get("formatVersion") != VERSION:
        raise ReconcilerError(f"{path} is a plan of format version {str(head.get('formatVersion'))[:20]}",
                              "make the plan again with this version of reconciler")
    try:
        document = _Document.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ReconcilerError(f"{path} is not a usable saved plan ({where}: {first['msg']})", hint) from None
    return document.saved()


def _plan(plan: Plan) -> dict:
    return {"lineage": plan.lineage, "serial": plan.serial, "fingerprint": plan.fingerprint,
            "actions": [{**asdict(a), "kind": a.kind.name, "changes": [asdict(c) for c in a.changes],
                         "overrides": [list(o) for o in a.overrides]} for a in plan.actions],
            "unmanaged": [asdict(u) for u in plan.unmanaged], "warnings": list(plan.warnings)}


# ---------------------------------------------------------------- the strict model of the file

class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class _Card(_Strict):
    grid_id: int | None
    resolution: float | None
    area_km2: float | None = Field(ge=0)
    time_from: str | None
    time_to: str | None
    collections: tuple[str, ...]
    tiles: int | None = Field(ge=0)
    output_type: str | None
    delivery: str | None
    note: str = ""
    bounds: dict[str, Any] | None = None

    def card(self) -> JobCard:
        return JobCard(**dict(self))


class _Change(_Strict):
    path: str
    before: Any
    after: Any


class _Action(_Strict):
    kind: Literal[tuple(k.name for k in Kind)]  # type: ignore[valid-type]
    name: str
    api: Literal["v1", "v2"]
    job_id: str | None
    reasons: tuple[str, ...]
    steps: tuple[Step, ...]
    changes: tuple[_Change, ...]
    live_status: str | None
    desired_state: str | None
    spec_hash: str | None
    cost_pu: float | None
    cost_source: Literal["estimate", "service"] | None
    overrides: tuple[tuple[str, Any], ...]
    rerun_of: str | None = None
    sends: str | None
    card: _Card | None = None  # absent in plans saved before job cards: still version 1

    def action(self) -> Action:
        fields = {**dict(self), "kind": Kind[self.kind], "changes": tuple(FieldChange(**dict(c)) for c in self.changes),
                  "card": self.card.card() if self.card is not None else None}
        return Action(**fields)


class _Unmanaged(_Strict):
    id: str
    api: str
    status: str
    description: str
    note: str = ""


class _Plan(_Strict):
    lineage: str
    serial: int = Field(ge=0)
    fingerprint: str
    actions: tuple[_Action, ...]
    unmanaged: tuple[_Unmanaged, ...]
    warnings: tuple[str, ...]


class _Document(_Strict):
    format: Literal["reconciler-plan"]
    formatVersion: Literal[1]
    reconcilerVersion: str
    paths: tuple[str, ...]
    journalSeq: int = Field(ge=0)
    allowReplace: bool
    targets: tuple[str, ...] | None
    plan: _Plan

    def saved(self) -> SavedPlan:
        plan = self.plan
        made = Plan(tuple(a.action() for a in plan.actions), plan.lineage, plan.serial, plan.fingerprint,
                    tuple(Unmanaged(**dict(u)) for u in plan.unmanaged), plan.warnings)
        return SavedPlan(made, self.paths, self.journalSeq, self.allowReplace, self.targets)
