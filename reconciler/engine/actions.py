"""Actions as values (docs/architecture.md, rule 3): what the plan will do to one job, why, and at what cost.
An action's kind *is* its display symbol; one sort key orders every plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from reconciler.batch import ApiVersion
from reconciler.engine.diff import FieldChange


@dataclass(frozen=True)
class KindFacts:
    """Everything about a kind of action, in one place: every view and the scheduled run read it here."""

    symbol: str  # its display symbol (Terraform's + ~ -)
    order: int  # where it sorts among one job's actions (the plan's one sort key)
    changes: bool  # it changes something, live or recorded
    review: int  # where a reviewer reads it in a pull request comment, riskiest first
    colour: str | None  # its colour on a terminal
    unattended: bool  # a scheduled run (`reconcile`) may do it without review
    phrase: str  # how a summary counts it ("3 to create", "2 waiting")
    open: bool = False  # shown open, never collapsed, in a comment


class Kind(Enum):
    ADOPT = KindFacts("<=", 0, True, 6, "cyan", True, "to adopt")
    FORGET = KindFacts("-", 1, True, 3, "red", False, "to forget")
    CREATE = KindFacts("+", 2, True, 4, "green", False, "to create")
    REPLACE = KindFacts("-/+", 3, True, 1, "red", False, "to replace", open=True)
    UPDATE = KindFacts("~", 4, True, 5, "yellow", True, "to update")
    ANALYSE = KindFacts("?", 5, True, 7, "green", True, "to analyse")
    START = KindFacts(">", 6, True, 8, "green", True, "to start")
    RESTART = KindFacts(">>", 7, True, 9, "green", True, "to restart")
    STOP = KindFacts("=", 8, True, 2, "red", True, "to stop")
    WAIT = KindFacts("...", 9, False, 10, "yellow", False, "waiting")
    BLOCKED = KindFacts("!", 10, False, 0, "red", False, "blocked", open=True)
    NOOP = KindFacts(" ", 11, False, 11, None, False, "unchanged")

    @property
    def symbol(self) -> str:
        return self.value.symbol

    @property
    def order(self) -> int:
        return self.value.order

    @property
    def changes(self) -> bool:
        return self.value.changes

    @property
    def word(self) -> str:
        return self.name.lower()


class Step(str, Enum):
    """What apply can do to a job; an action lists the steps it needs, in order. A str enum: the
    saved plan and the JSON view write the values."""

    ADOPT = "adopt"
    FORGET = "forget"
    CREATE = "create"
    UPDATE = "update"
    ANALYSE = "analyse"
    START = "start"
    START_WITHIN_BUDGET = "start-within-budget"  # start once the service's estimate is within maxCostPU
    RESTART = "restart"
    STOP = "stop"
    STOP_OLD = "stop-old"  # a replacement stops the request it replaces, once its successor exists

    def __str__(self) -> str:
        return self.value

    @property
    def spends(self) -> bool:
        """Whether the step runs a job, and so spends processing units."""
        return self in (Step.START, Step.START_WITHIN_BUDGET, Step.RESTART)


@dataclass(frozen=True)
class JobCard:
    """What a create or replace will run, for a reviewer: grid, area, time range, collections,
    tiles and where results go, sized offline once per body (engine.estimate). It holds the area
    as the manifest gives it (`bounds`), never tile outlines: a view draws the tiles of the few
    cards it shows, and a plan of 10,000 creates holds 10,000 small cards. Sensitive values are
    already "(sensitive)" here; `bounds` is None when any part of it is."""

    grid_id: int | None  # None: a GeoPackage input, or a body that names no grid
    resolution: float | None  # in the grid's unit (metres, or degrees for the WGS84 grid)
    area_km2: float | None  # of the area of interest (geodesic); None when it cannot be read
    time_from: str | None  # the first data source's timeRange, as written
    time_to: str | None
    collections: tuple[str, ...]  # the data sources' types, in order, each once
    tiles: int | None  # tiles of the area on the grid; None: no offline tiling (see `note`)
    output_type: str | None  # "raster" or "zarr"
    delivery: str | None  # where results go: the URL up to its first <placeholder>
    note: str = ""  # why a figure is missing, e.g. a GeoPackage input has no offline tiles
    bounds: dict[str, Any] | None = field(default=None, compare=False, repr=False)  # processRequest.input.bounds


@dataclass(frozen=True, slots=True)
class Action:
    kind: Kind
    name: str
    api: ApiVersion
    job_id: str | None  # the live request acted on (None before a create)
    reasons: tuple[str, ...]
    steps: tuple[Step, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    live_status: str | None = None
    desired_state: str | None = None
    spec_hash: str | None = None  # of the manifest the action was planned from (create, replace)
    cost_pu: float | None = None
    cost_source: str | None = None  # "estimate" (offline, from the manifest) or "service"
    overrides: tuple[tuple[str, object], ...] = ()  # a re-run's body changes, as shown (sensitive values masked)
    rerun_of: str | None = None  # a re-run writes where this request wrote (engine.rerun makes the overrides)
    sends: str | None = None  # digest of the create body or description apply sends (engine.payload)
    card: JobCard | None = None  # what a create or replace will run (not part of its substance)
    refused: Kind | None = None  # of a blocked action: what policy refused (a create, a replace, a start, …)

    def sort_key(self) -> tuple[str, int]:
        return (self.name, self.kind.order)

    @property
    def spends(self) -> bool:
        """Whether the action runs a job, and so spends processing units (a create left at
        `created` or `analysed` spends none: analysis is free)."""
        return self.kind.changes and any(step.spends for step in self.steps)

    @property
    def cost(self) -> float | None:
        """The PU this action is expected to spend, to the tenth shown (None: no figure yet)."""
        return round(self.cost_pu, 1) if self.spends and self.cost_pu is not None else None

    def substance(self) -> tuple[object, ...]:
        """What the action does, as opposed to how it is explained: a saved plan is executed only
        when a fresh plan has the same substance (docs/plan-file.md)."""
        return (self.name, self.kind.name, self.api, self.job_id, self.steps, self.spec_hash, self.overrides,
                self.rerun_of, self.sends)


@dataclass(frozen=True)
class Unmanaged:
    id: str
    api: str
    status: str
    description: str
    note: str = ""


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    lineage: str
    serial: int
    fingerprint: str  # of the live jobs the plan was made from
    unmanaged: tuple[Unmanaged, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    # recorded jobs whose manifest file lies outside the paths planned: never removed by this plan
    out_of_scope: tuple[str, ...] = ()

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind.changes)

    @property
    def drift(self) -> bool:
        """Live jobs differ from the manifests: changes to make, or ones policy refuses."""
        return any(a.kind.changes or a.kind is Kind.BLOCKED for a in self.actions)

    @property
    def blocked(self) -> tuple[Action, ...]:
        """What policy refuses: a reviewer must act before this plan can converge."""
        return tuple(a for a in self.actions if a.kind is Kind.BLOCKED)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for action in self.actions:
            out[action.kind.word] = out.get(action.kind.word, 0) + 1
        return out

    def cost(self) -> float:
        """PU this plan is expected to spend: the sum of its actions' figures as shown."""
        return round(sum(a.cost for a in self.actions if a.cost is not None), 1)
