"""Saved plans (`plan --out FILE`, `apply FILE`), on disk: the plan's actions plus what it was made
from — the lockfile's lineage and serial, a fingerprint of the live jobs it saw, the manifest paths
and options. The file is never trusted on its own: apply plans again and compares
(operations/run.py). No secret is in it: bodies are not saved, only digests of what each action
sends (secrets keyed by a seal only the account's client secret gives, engine/payload.py)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from reconciler import __version__
from reconciler.engine.actions import Action, Kind, Plan, Step, Unmanaged
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
    try:
        document = json.loads(Path(path).read_text())
        if document.get("format") != FORMAT:
            raise ValueError("not a saved plan")
        if document.get("formatVersion") != VERSION:
            raise ReconcilerError(f"{path} is a plan of format version {document.get('formatVersion')}",
                                  "make the plan again with this version of reconciler")
        plan = document["plan"]
        actions = tuple(_action(a) for a in plan["actions"])
        return SavedPlan(
            Plan(actions, plan["lineage"], plan["serial"], plan["fingerprint"],
                 tuple(Unmanaged(**u) for u in plan["unmanaged"]), tuple(plan["warnings"])),
            tuple(document["paths"]), document["journalSeq"], document["allowReplace"],
            tuple(document["targets"]) if document["targets"] is not None else None)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReconcilerError(f"{path} is not a usable saved plan ({e})", "make it with `reconciler plan --out FILE`") from None


def _plan(plan: Plan) -> dict:
    return {"lineage": plan.lineage, "serial": plan.serial, "fingerprint": plan.fingerprint,
            "actions": [{**asdict(a), "kind": a.kind.name, "changes": [asdict(c) for c in a.changes],
                         "overrides": [list(o) for o in a.overrides]} for a in plan.actions],
            "unmanaged": [asdict(u) for u in plan.unmanaged], "warnings": list(plan.warnings)}


def _action(data: dict) -> Action:
    return Action(**{**data, "kind": Kind[data["kind"]], "reasons": tuple(data["reasons"]), "steps": tuple(Step(s) for s in data["steps"]),
                     "changes": tuple(FieldChange(**c) for c in data["changes"]),
                     "overrides": tuple(tuple(o) for o in data["overrides"])})
