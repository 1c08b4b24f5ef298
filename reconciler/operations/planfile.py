"""Saved plans (`plan --out FILE`, `apply FILE`, `show FILE`), on disk (docs/plan-file.md): the
plan's actions, with the job card of each create and replace, plus what it was made from (the
lockfile's lineage, serial and journal position, a fingerprint of the live jobs it saw, the
manifests' commit) and the options it was made with (paths, shard, targets, selectors,
--allow-replace).

A saved plan carries no authority of its own (docs/security.md). The file is signed with an
HMAC-SHA256 under the plan key (settings.plan_key), which only trusted jobs hold, and `show` and
`apply` verify the signature before anything else: a file that is unsigned, signed with another
key or altered in any value is refused in one line. Every digest in it is keyed with the same key
(the fingerprint, `sends`, spec hashes), so nothing published confirms a guessed secret. Apply
then takes its options from its own command line (they must equal the recorded ones), plans again
and executes only when the fresh plan does what the saved one says (operations/run.py).

The file is read strictly: at most MAX_BYTES, no duplicate keys, no NaN, every field checked by a
model, so a malformed file is one error naming the field.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reconciler import __version__
from reconciler.atomic import atomic_write
from reconciler.batch import ApiVersion
from reconciler.canonical import stable_json
from reconciler.engine.actions import Action, JobCard, Kind, Plan, Step, Unmanaged
from reconciler.engine.diff import FieldChange
from reconciler.errors import ReconcilerError
from reconciler.state.format import strict_json_loads

FORMAT = "reconciler-plan"
VERSION = 2
MAX_BYTES = 64 * 1024 * 1024  # a plan of 10,000 creates with their cards is about 15 MB
_HINT = "make it with `reconciler plan --out FILE`"


class PlanKeys:
    """What the plan key gives (HMACs of it, one per use, so no use reveals another): the key
    every published digest is keyed with, the signing key, and an id that tells keys apart
    without revealing anything about them."""

    def __init__(self, plan_key: bytes):
        self.digests = _derive(plan_key, b"digests")
        self._signing = _derive(plan_key, b"signature")
        self.id = _derive(plan_key, b"key id").hex()[:16]

    def __repr__(self) -> str:
        return f"PlanKeys(id={self.id})"

    def sign(self, document: dict[str, Any]) -> str:
        return "hmac-sha256:" + hmac.new(self._signing, FORMAT.encode() + b"\0" + stable_json(document).encode(),
                                         hashlib.sha256).hexdigest()


def _derive(plan_key: bytes, use: bytes) -> bytes:
    return hmac.new(plan_key, b"reconciler plan " + use, hashlib.sha256).digest()


@dataclass(frozen=True)
class Options:
    """What a plan was made for, from its command line; `apply FILE` must be given the same."""

    paths: tuple[str, ...]  # normalised (plan_options), sorted
    shard: str | None
    targets: tuple[str, ...] | None  # sorted; None = every job
    selectors: tuple[str, ...]  # "key=value", sorted
    allow_replace: bool

    def differences(self, given: Options) -> list[str]:
        """How `given` (this apply's command line) differs from the options recorded here."""
        out = []
        for what, recorded, now in (("paths", self.paths, given.paths), ("shard", self.shard, given.shard),
                                    ("--target", self.targets, given.targets),
                                    ("--selector", self.selectors, given.selectors),
                                    ("--allow-replace", self.allow_replace, given.allow_replace)):
            if recorded != now:
                out.append(f"{what}: the plan has {describe(recorded)}, this apply {describe(now)}")
        return out


def describe(value: object) -> str:
    """An option's value as `show` and the refusals say it."""
    if value is None:
        return "(all)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return " ".join(value) if value else "(none)"
    return str(value)


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    options: Options
    journal_seq: int
    commit: str | None  # the git commit of the manifests planned, when they sit in a work tree


def published(plan: Plan, keys: PlanKeys) -> Plan:
    """The plan as it is saved and compared: each spec hash keyed too (the fingerprint and `sends`
    already are), so two plan keys give plans that share no digest."""
    return replace(plan, actions=tuple(replace(a, spec_hash=_keyed(keys, a.spec_hash)) for a in plan.actions))


def _keyed(keys: PlanKeys, value: str | None) -> str | None:
    if value is None:
        return None
    return hmac.new(keys.digests, b"spec hash\0" + value.encode(), hashlib.sha256).hexdigest()[:32]


def is_plan_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return f'"format": "{FORMAT}"'.encode() in head


def save(saved: SavedPlan, path: str, keys: PlanKeys) -> None:
    """Write `saved` (already `published`) to `path`, signed."""
    options = saved.options
    document: dict[str, Any] = {
        "format": FORMAT, "formatVersion": VERSION, "reconcilerVersion": __version__,
        "saved": {"commit": saved.commit, "shard": options.shard, "paths": list(options.paths),
                  "targets": list(options.targets) if options.targets is not None else None,
                  "selectors": list(options.selectors), "allowReplace": options.allow_replace},
        "journalSeq": saved.journal_seq, "plan": _plan(saved.plan), "keyId": keys.id}
    document = json.loads(json.dumps(document))  # the values as a reader parses them: that is what is signed
    document["signature"] = keys.sign(document)
    atomic_write(path, (json.dumps(document, indent=1) + "\n").encode())


def load(path: str, keys: PlanKeys) -> SavedPlan:
    """The saved plan at `path`, its signature verified first; a ReconcilerError (one line)
    when it is not one, is unsigned, signed with another key, altered, or damaged."""
    document = _read(path)
    signature = document.pop("signature", None)
    if not isinstance(signature, str):
        raise ReconcilerError(f"{path} is not signed: it cannot be shown or applied", _HINT)
    if document.get("keyId") != keys.id:
        raise ReconcilerError(f"{path} was signed with another plan key: it cannot be shown or applied",
                              "set the RECONCILER_PLAN_KEY (or SH_CLIENT_SECRET) the plan was made with, or make "
                              "a new plan")
    if not hmac.compare_digest(signature, keys.sign(document)):
        raise ReconcilerError(f"{path} was altered since it was signed: it cannot be shown or applied",
                              "make a new plan and review it: `reconciler plan --out FILE`")
    try:
        return _Document.model_validate_json(json.dumps(document)).saved_plan()  # JSON mode: arrays as tuples
    except ValidationError as e:  # signed by this key, yet not what this version writes
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ReconcilerError(f"{path} is not a usable saved plan ({where}: {first['msg']})", _HINT) from None


def _read(path: str) -> dict[str, Any]:
    """The file's JSON object, read within MAX_BYTES, with its format and version checked."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_BYTES:
                raise ReconcilerError(f"{path} is larger than a saved plan can be ({MAX_BYTES // 2**20} MiB): not read",
                                      _HINT)
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise ReconcilerError(f"{path} is not a usable saved plan ({e.strerror or e})", _HINT) from None
    if len(data) > MAX_BYTES:  # grew while read, or not a regular file
        raise ReconcilerError(f"{path} is larger than a saved plan can be ({MAX_BYTES // 2**20} MiB): not read", _HINT)
    try:
        document = strict_json_loads(data)
    except ValueError as e:
        raise ReconcilerError(f"{path} is not a usable saved plan ({str(e)[:200]})", _HINT) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReconcilerError(f"{path} is not a usable saved plan (not a saved plan)", _HINT)
    if document.get("formatVersion") != VERSION:
        raise ReconcilerError(f"{path} is a plan of format version {str(document.get('formatVersion'))[:20]}, "
                              "unsigned or signed otherwise", "make the plan again with this version of reconciler")
    return document


def _plan(plan: Plan) -> dict:
    return {"lineage": plan.lineage, "serial": plan.serial, "fingerprint": plan.fingerprint,
            "actions": [{**asdict(a), "kind": a.kind.name, "changes": [asdict(c) for c in a.changes],
                         "overrides": [list(o) for o in a.overrides],
                         "refused": a.refused.name if a.refused is not None else None} for a in plan.actions],
            "unmanaged": [asdict(u) for u in plan.unmanaged], "warnings": list(plan.warnings),
            "outOfScope": list(plan.out_of_scope)}


# ---------------------------------------------------------------- the strict model of the file

class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True, defer_build=True)


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
    note: str
    bounds: dict[str, Any] | None

    def card(self) -> JobCard:
        return JobCard(**dict(self))


class _Change(_Strict):
    path: str
    before: Any
    after: Any


class _Action(_Strict):
    # `kind` and `refused` are Literals of Kind's names, listed at run time: mypy cannot read them as types
    kind: Literal[tuple(k.name for k in Kind)]  # type: ignore[valid-type]
    name: str
    api: ApiVersion
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
    rerun_of: str | None
    sends: str | None
    card: _Card | None
    refused: Literal[tuple(k.name for k in Kind)] | None  # type: ignore[valid-type]

    def action(self) -> Action:
        fields = {**dict(self), "kind": Kind[self.kind], "changes": tuple(FieldChange(**dict(c)) for c in self.changes),
                  "card": self.card.card() if self.card is not None else None,
                  "refused": Kind[self.refused] if self.refused is not None else None}
        return Action(**fields)


class _Unmanaged(_Strict):
    id: str
    api: str
    status: str
    description: str
    note: str


class _Plan(_Strict):
    lineage: str
    serial: int = Field(ge=0)
    fingerprint: str
    actions: tuple[_Action, ...]
    unmanaged: tuple[_Unmanaged, ...]
    warnings: tuple[str, ...]
    outOfScope: tuple[str, ...]


class _Saved(_Strict):
    commit: str | None
    shard: str | None
    paths: tuple[str, ...]
    targets: tuple[str, ...] | None
    selectors: tuple[str, ...]
    allowReplace: bool


class _Document(_Strict):
    format: Literal["reconciler-plan"]
    formatVersion: Literal[2]
    reconcilerVersion: str
    saved: _Saved
    journalSeq: int = Field(ge=0)
    plan: _Plan
    keyId: str

    def saved_plan(self) -> SavedPlan:
        plan, saved = self.plan, self.saved
        made = Plan(tuple(a.action() for a in plan.actions), plan.lineage, plan.serial, plan.fingerprint,
                    tuple(Unmanaged(**dict(u)) for u in plan.unmanaged), plan.warnings, plan.outOfScope)
        options = Options(saved.paths, saved.shard, saved.targets, saved.selectors, saved.allowReplace)
        return SavedPlan(made, options, self.journalSeq, saved.commit)
