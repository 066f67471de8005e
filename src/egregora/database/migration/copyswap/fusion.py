"""Fusing a run's consecutive rebuilds of one table into one: a pure plan, no database.

In one ``alembic upgrade`` a table may be rebuilt by several revisions (V3 to
V4 rebuilds journals, profiles, media and annotations twice each). On DuckDB
each rebuild writes the whole table again; fused, it is written once:

- Each operation is a :class:`Stage`. Stage *k* reads the rows as stage
  *k-1* leaves them: a relation (``RulePlanner.stage_output``) over the
  table, never a copy, carrying each row's id (``STAGE_ID``).
- Every stage but the last judges its rows with its own rules and records
  the rows it rejects in a temporary table of its own; its quarantined rows
  keep the shape they had at that stage and the stage's revision tag, as if
  the revisions had run one by one.
- The last stage is an ordinary plan whose rows come from the stage before
  (``origin``): one copy, one swap, keys and indexes built once.

Which operations may be fused, and when a run must write what it has
(barriers), is decided at run time (:mod:`.pending`); this module only plans.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from egregora.database.migration.copyswap.model import (
    OLD_SUFFIX,
    REJECTED,
    CopySwapPlan,
    Facts,
    OnViolation,
    Rule,
    Source,
    Stage,
    Step,
)
from egregora.database.migration.copyswap.planner import make_planner, plan
from egregora.database.migration.sequences import implicit_sequence

__all__ = [
    "RebuildPlan",
    "StagePlan",
    "can_follow",
    "declared_indexes",
    "in_mode",
    "plan_judged",
    "plan_rebuild",
]

#: default expressions whose value differs each time they are read: a stage
#: that fills a new column with one can't be read again by a later stage
VOLATILE = ("nextval", "random", "uuid", "gen_random")


def can_follow(stage: Stage, later: Stage) -> bool:
    """Whether ``later`` can read ``stage``'s output instead of a written table.

    Not when the modes differ (one plan has one), nor when ``stage`` fills a
    new column from a sequence or another volatile default: read twice (by
    the later stage's rules, then by its copy) it would give other values
    than one write gives.
    """
    if later.on_violation != stage.on_violation:
        return False
    old = set(stage.previous.columns.keys())
    mapped = set(stage.column_map)
    for column in stage.target.columns:
        if column.name in old or column.name in mapped or column.computed is not None:
            continue
        if implicit_sequence(column):
            return False
        default = column.server_default
        if isinstance(default, sa.DefaultClause):
            text = str(getattr(default.arg, "text", default.arg)).lower()
            if any(word in text for word in VOLATILE):
                return False
    return True


def in_mode(stages: Sequence[Stage], mode: OnViolation) -> list[Stage]:
    """``stages`` all in ``mode`` (a refused run goes on as if quarantining)."""
    return [dataclasses.replace(s, on_violation=mode) for s in stages]


@dataclass(frozen=True)
class StagePlan:
    """An earlier stage: its rules, where its rejected rows go, what it passes on."""

    stage: Stage
    rules: tuple[Rule, ...]
    rejected: str  # temporary table: (tbl, rid, reason) of the rows this stage rejects
    create_rejected: str
    #: the rejected rows to <table>_quarantine: in quarantine mode, or in a
    #: refused run that goes on to judge later operations
    moves: tuple[Step, ...]
    output: str  # the rows it leaves, for the next stage to read
    input: str  # the rows it reads (the table, or the stage before's output)
    #: the rows it leaves have the values and columns they had (only the rules change)
    keeps_values: bool = False


@dataclass(frozen=True)
class RebuildPlan:
    """A table's stages: the earlier ones judged in place, the last one written."""

    table: str
    stages: tuple[StagePlan, ...]
    final: CopySwapPlan
    final_stage: Stage
    cleanup: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        lines = [f"-- fused rebuild of {self.table}: {len(self.stages) + 1} operations"]
        for earlier in self.stages:
            lines.append(f"-- stage {earlier.stage.revision}: read, not written")
            lines += [f"-- rule: {rule.reason}" for rule in earlier.rules]
            lines.append(f"{earlier.create_rejected};")
            lines += [f"{rule.reject_sql};" for rule in earlier.rules]
            if earlier.stage.on_violation == "quarantine":
                lines += [f"{step.sql};" for step in earlier.moves]
        lines.append(f"-- stage {self.final_stage.revision}: written")
        lines.append(str(self.final))
        lines += [f"{sql};" for sql in self.cleanup]
        return "\n".join(lines)


def declared_indexes(stages: Sequence[Stage]) -> frozenset[str]:
    """Index names any stage declares: the table's others are kept as they are."""
    return frozenset(name for stage in stages for name in stage.declared_indexes())


def plan_rebuild(
    stages: Sequence[Stage],
    *,
    dialect: sa.Dialect,
    facts: Facts | None = None,
    parents: Mapping[str, str] | None = None,
) -> RebuildPlan:
    """Plan ``stages`` (one table's, in order) as one rebuild. Pure: no database access.

    One stage is an ordinary plan. With ``facts.renamable`` the table can be
    moved aside; the last stage then copies from the earlier stages' output
    read under that name.
    """
    facts = facts or Facts()
    planned: list[StagePlan] = []
    origin: str | None = None
    aside: str | None = None  # the same relations, over the table moved aside
    for index, stage in enumerate(stages[:-1], start=1):
        source = Source(origin, f"{REJECTED}_{index}", dict(parents or {}))
        earlier = _earlier(stage, dialect, source)
        if facts.renamable:  # the same relation, read from the table moved aside
            aside_source = Source(aside, earlier.rejected, source.parents, stage.table + OLD_SUFFIX)
            aside = _earlier(stage, dialect, aside_source).output
        planned.append(earlier)
        origin = earlier.output
    last = stages[-1]
    source = Source(origin, REJECTED, dict(parents or {}), copy_origin=aside)
    final = plan(last, dialect, facts, source)
    preparer = dialect.identifier_preparer
    cleanup = tuple(f"DROP TABLE {preparer.quote(p.rejected)}" for p in planned)
    return RebuildPlan(last.table, tuple(planned), final, last, cleanup)


def plan_judged(
    stages: Sequence[Stage], *, dialect: sa.Dialect, parents: Mapping[str, str] | None = None
) -> list[StagePlan]:
    """Every stage, the last one too, judged and not written: a refused run's scans.

    Each stage's rejected rows go to a table named for the table and the
    stage, which lives until the run ends, so that the rules of a table
    judged later can read what this one would leave (``parents``).
    """
    planned: list[StagePlan] = []
    origin: str | None = None
    for index, stage in enumerate(stages, start=1):
        source = Source(origin, f"{REJECTED}_{stage.table}_{index}", dict(parents or {}))
        earlier = _earlier(stage, dialect, source)
        planned.append(earlier)
        origin = earlier.output
    return planned


def _earlier(stage: Stage, dialect: sa.Dialect, source: Source) -> StagePlan:
    planner = make_planner(stage, dialect, Facts(), source)
    return StagePlan(
        stage=stage,
        rules=tuple(planner.target_rules()),
        rejected=planner.rejected,
        create_rejected=planner.rejected_table().sql,
        moves=tuple(planner.quarantine_steps(stage.previous, stage.revision)),
        output=planner.stage_output(),
        input=planner.own_rows,
        keeps_values=not planner.changed
        and not stage.column_map
        and list(planner.values) == list(stage.previous.columns.keys()),
    )
