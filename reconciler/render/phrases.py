"""How the parts of a plan are said, shared by its three views (render/plan.py: text and JSON;
render/markdown.py: the pull-request comment): redacted values, cost notes, the summary line, the
leaf changes of a diff and the facts of a job card. Pure functions of the plan; nothing prints.

Every value is redacted here once more, whatever the planner did: a value already hidden as
"(sensitive…" or sitting at a credential key is only ever shown as "(sensitive)".
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from reconciler import redaction
from reconciler.engine.actions import Action, JobCard, Kind, Plan
from reconciler.engine.diff import FieldChange
from reconciler.geo.grids import GRIDS
from reconciler.operations.planfile import SavedPlan, describe
from reconciler.redaction import SENSITIVE

VALUE_WIDTH = 100  # characters of a value shown in text and markdown before it is shortened
_MIDNIGHT = re.compile(r"^(\d{4}-\d{2}-\d{2})T00:00(:00(\.0+)?)?(Z|[+-]00:?00)?$")


def redact(value: Any, path: str = "") -> Any:
    """`value` (found at the dotted `path`) with every sensitive part replaced by "(sensitive)"."""
    return redaction.redact(value, path.rsplit(".", 1)[-1].split("[", 1)[0] or None)


def short_value(value: Any, path: str = "") -> str:
    """One line for a (redacted) value: JSON, a multi-line string as its first line and line count."""
    value = redact(value, path)
    if value == SENSITIVE:
        return SENSITIVE
    if isinstance(value, str) and "\n" in value.strip("\n"):
        lines = value.splitlines()
        return f"{_cut(_json(lines[0]))} … ({len(lines)} lines)"
    return _cut(_json(value))


def _json(value: Any) -> str:
    return json.dumps(finite(value), ensure_ascii=False, sort_keys=True, separators=(", ", ": "), default=str)


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats become strings rather than invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _cut(text: str) -> str:
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def pu(value: float) -> str:
    return f"{value:,.1f} PU"


def cost_note(action: Action) -> str:
    if action.cost is None:  # nothing run, nothing spent (or no figure yet: counted in the summary)
        return ""
    if action.cost_source == "estimate":
        return f"est. {pu(action.cost)}"
    return f"{pu(action.cost)} ({action.cost_source or 'service'})"


def steps_note(action: Action) -> str:
    steps = [s.replace("-", " ") for s in action.steps]
    if not steps or steps == [action.kind.word]:
        return ""
    if steps[0] == action.kind.word:
        return "then " + ", ".join(steps[1:])
    return "steps: " + ", ".join(steps)


def unestimated(plan: Plan) -> int:
    """Actions that will spend processing units but have no figure yet (they are not in the total)."""
    return sum(1 for a in plan.actions if a.spends and a.cost_pu is None)


def phrase(kind: Kind) -> str:
    """What the views call a kind of action wherever they count it: "to create", "waiting",
    "blocked", "unchanged" (one vocabulary for the summary, the table and the headings)."""
    return kind.value.phrase


def state_phrase(plan: Plan) -> str:
    """The lockfile a plan rests on. Before the first apply there is none: serial 0 is never stored."""
    if plan.serial == 0:
        return "no lockfile yet (the first apply writes it)"
    return f"state lineage {plan.lineage}, serial {plan.serial}"


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    if not plan.changes and not counts.get("blocked") and not counts.get("wait"):
        return "No changes. Live jobs match the manifests."
    parts = [f"{counts[k.word]} {phrase(k)}" for k in kinds() if counts.get(k.word)]
    missing = unestimated(plan)
    tail = f" ({missing} action(s) without an estimate)" if missing else ""
    return f"Plan: {', '.join(parts)} · estimated cost {pu(plan.cost())}{tail}"


def kinds() -> list[Kind]:
    return sorted(Kind, key=lambda k: k.order)


def listed(plan: Plan, verbose: bool) -> list[Action]:
    return [a for a in plan.actions if verbose or a.kind is not Kind.NOOP]


def leaf_changes(changes: tuple[FieldChange, ...]) -> list[FieldChange]:
    """The changes a person reads: a whole object or same-length list that changed is shown key by
    key (the diff reports an object wholesale when it shares few keys), only where they differ."""
    found: list[FieldChange] = []
    for change in changes:
        found += _leaves(change.path, change.before, change.after)
    return found


def _leaves(path: str, before: Any, after: Any) -> list[FieldChange]:
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(set(before) | set(after), key=str)
        return [leaf for k in keys if before.get(k) != after.get(k)
                for leaf in _leaves(f"{path}.{k}", before.get(k), after.get(k))]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [leaf for i, (b, a) in enumerate(zip(before, after, strict=False)) if b != a
                for leaf in _leaves(f"{path}[{i}]", b, a)]
    return [FieldChange(path, before, after)]


def change_symbol(before: Any, after: Any) -> str:
    return "+" if before is None else "-" if after is None else "~"


def first_difference(before: Any, after: Any) -> str:
    """For two multi-line strings (evalscripts), where they start to differ: their first lines
    alone often say nothing."""
    if not (isinstance(before, str) and isinstance(after, str)) or SENSITIVE in (before, after):
        return ""
    if "\n" not in before.strip("\n") and "\n" not in after.strip("\n"):
        return ""
    old, new = before.splitlines(), after.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    return f"first difference at line {line + 1}"


# ---------------------------------------------------------------- the job card

def card_grid(card: JobCard) -> str:
    """`grid 0 (20km grid) at 60 m`; `no tiling grid` for a GeoPackage input."""
    if card.grid_id is None:
        return "no tiling grid"
    grid = GRIDS.get(card.grid_id)
    name = f" ({grid.name})" if grid else " (unknown grid)"
    if card.resolution is None:
        return f"grid {card.grid_id}{name}"
    unit = "" if grid is None else "°" if grid.unit == "DEGREE" else " m"
    return f"grid {card.grid_id}{name} at {card.resolution:g}{unit}"


def card_area(card: JobCard) -> str:
    return "area unknown" if card.area_km2 is None else f"{card.area_km2:,.1f} km²"


def card_tiles(card: JobCard) -> str:
    if card.tiles is None:
        return card.note or "tiles unknown"
    return f"{card.tiles:,} tile" + ("" if card.tiles == 1 else "s")


def card_time(card: JobCard) -> str:
    if card.time_from is None and card.time_to is None:
        return "no time range"
    return f"{_day(card.time_from)} → {_day(card.time_to)}"


def _day(instant: str | None) -> str:
    """An instant at midnight UTC as its date (`2019-04-01`), any other as written."""
    if instant is None:
        return "?"
    match = _MIDNIGHT.match(instant)
    return match.group(1) if match else instant


def card_collections(card: JobCard) -> str:
    return ", ".join(card.collections) or "no collection"


def card_output(card: JobCard) -> str:
    """`raster → s3://bucket/prefix`."""
    what = card.output_type or "output"
    return f"{what} → {card.delivery}" if card.delivery else what


def card_estimate(action: Action) -> str:
    """What the job costs, said as the plan's total counts it: what this run spends when it runs the
    job (`Action.cost`), else nothing, with the figure the job will cost once it runs."""
    if action.cost_pu is None:
        return "no offline estimate"
    figure = pu(round(action.cost_pu, 1))
    figure = f"est. {figure}" if action.cost_source == "estimate" else f"{figure} ({action.cost_source or 'service'})"
    if action.spends:
        return f"{figure} in this run"
    if action.kind is Kind.BLOCKED:
        return f"nothing in this run: blocked ({figure} if it ran)"
    return f"nothing in this run: it is not started ({figure} once it is)"


def card_json(action: Action) -> dict | None:
    """The card as the JSON view writes it (docs/plan-json.md)."""
    card = action.card
    if card is None:
        return None
    grid = GRIDS.get(card.grid_id) if card.grid_id is not None else None
    timed = card.time_from is not None or card.time_to is not None
    return {
        "api": action.api,
        "grid": {"id": card.grid_id, "name": grid.name if grid else None} if card.grid_id is not None else None,
        "resolution": card.resolution,
        "areaKm2": card.area_km2,
        "timeRange": {"from": card.time_from, "to": card.time_to} if timed else None,
        "collections": list(card.collections),
        "tiles": card.tiles,
        "output": {"type": card.output_type, "delivery": redact(card.delivery)},
        "estimatePU": round(action.cost_pu, 1) if action.cost_pu is not None else None,
        "note": card.note,
    }


def saved_line(saved: SavedPlan) -> str:
    """A saved plan's options, as `apply FILE` must be given them, and its commit."""
    o = saved.options
    return (f"Saved plan of commit {saved.commit or '(not in git)'} · shard {describe(o.shard or '(none)')} · "
            f"paths {describe(o.paths)} · --target {describe(o.targets)} · --selector {describe(o.selectors)} · "
            f"--allow-replace {describe(o.allow_replace)}")


def scope_line(plan: Plan) -> str:
    """The recorded jobs this plan leaves alone because their manifest file is elsewhere."""
    if not plan.out_of_scope:
        return ""
    return (f"{len(plan.out_of_scope)} recorded job(s) are out of scope (declared outside these paths, or before "
            "files were recorded): left alone; plan their paths to act on them.")
