"""What a create-copy-swap plan is made of: plain data, no database, no SQL writing.

A planner takes a :class:`Stage` (the change: the table as found, the
target, how rows map), :class:`Facts` (what only the live catalog or the run
can say) and, for a fused rebuild's stages, a :class:`Source`. It gives a
:class:`CopySwapPlan`: the :class:`Rule` s the rows must satisfy and the
:class:`Step` s that change the table, for both ``fail`` and ``quarantine``.
:class:`RowPolicy` holds the caller's choices about rows (which duplicate is
kept, which columns name a row in reports).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import sqlalchemy as sa

from egregora.database.migration.definitions import StoredTable, dropped_columns

__all__ = [
    "Change",
    "ColumnMapValue",
    "CopySwapPlan",
    "Facts",
    "NEW_SUFFIX",
    "OLD_SUFFIX",
    "ON_VIOLATION_CHOICES",
    "OnViolation",
    "Phase",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_SUFFIX",
    "REJECTED",
    "ROW_ID",
    "RowPolicy",
    "Rule",
    "SAMPLE_SIZE",
    "STAGE_ID",
    "STASH_SUFFIX",
    "Source",
    "Stage",
    "Step",
    "Variant",
    "Variants",
]

OnViolation = Literal["fail", "quarantine"]
#: A column_map value: SQL text over the old row, or an expression such as
#: ``sa.column("old_name")`` that the dialect renders (and quotes).
ColumnMapValue = str | sa.ColumnElement[object]
ON_VIOLATION_CHOICES: tuple[str, ...] = ("fail", "quarantine")

QUARANTINE_SUFFIX = "_quarantine"
REJECTED = "__ccs_rejected"  # temporary: (table, row id, reason) of rows to quarantine
ROW_ID = "__ccs_rid"
STAGE_ID = "__ccs_sid"  # a fused stage's output: the row id it carries (fusion.py)
NEW_SUFFIX = "__ccs_new"
STASH_SUFFIX = "__ccs_stash"
OLD_SUFFIX = "__ccs_old"  # the table moved aside while its new self is filled (duckdb.py)
SAMPLE_SIZE = 5
QUARANTINE_COLUMNS = ("_quarantine_reason", "_quarantined_at", "_quarantine_revision")


@dataclass(frozen=True)
class RowPolicy:
    """The caller's choices about rows; the engine itself prefers no column by name.

    - ``sample_columns``: the columns that name a row in a refusal report
      when the table has no primary key, the first one the table has
      (``{table}`` stands for the table's name); else its first column.
    - ``keep_first_by``: among rows that duplicate a new UNIQUE key, the
      one kept is the first by these columns (those the table has, NULLs
      last), then by the primary key, then in the order rows were stored.
    - ``keep_last_in``: the tables where the last row in that order is kept
      instead: the latest by ``keep_first_by`` (NULLs still last), then the
      highest primary key, then the last stored. For tables whose rows are
      rewritten by writing a new version of them.
    """

    sample_columns: tuple[str, ...] = ("id", "{table}_id")
    keep_first_by: tuple[str, ...] = ()
    keep_last_in: frozenset[str] = frozenset()

    def keeps_last(self, table: str) -> bool:
        """Whether the duplicate ``table`` keeps is the last in ``keep_first_by`` order."""
        return table in self.keep_last_in


@dataclass(frozen=True)
class Change:
    """A ``create_copy_swap`` as a run takes it: the revision's definitions, in the run's terms.

    ``declared`` and ``dependents`` are what the revision wrote (``previous=``,
    ``dependents=``): online the database says what they are now; offline
    (``--sql``) they are all there is. :meth:`at` makes it a :class:`Stage`
    once the table is found.
    """

    target: sa.Table
    column_map: Mapping[str, ColumnMapValue] = field(default_factory=dict)
    declared: sa.Table | None = None
    dependents: Sequence[sa.Table] = ()
    revision: str = "unknown"
    on_violation: OnViolation = "fail"
    policy: RowPolicy = field(default_factory=RowPolicy)

    @property
    def table(self) -> str:
        return self.target.name

    def at(self, previous: sa.Table) -> Stage:
        """This change from ``previous``, the table as found."""
        return Stage(
            previous,
            self.target,
            self.column_map,
            self.revision,
            self.on_violation,
            self.policy,
            self.declared,
        )


@dataclass(frozen=True)
class Stage:
    """One create_copy_swap as a run meets it: the change, as plain data.

    ``previous`` is the table as this stage finds it (reflected, or the
    target of the table's stage before, in a fused rebuild); ``declared``
    is the revision's own ``previous=``, whose indexes the target drops on
    purpose when it lacks them.
    """

    previous: sa.Table
    target: sa.Table
    column_map: Mapping[str, ColumnMapValue] = field(default_factory=dict)
    revision: str = "unknown"
    on_violation: OnViolation = "fail"
    policy: RowPolicy = field(default_factory=RowPolicy)
    declared: sa.Table | None = None

    @property
    def table(self) -> str:
        return self.target.name

    def dropped_columns(self) -> list[str]:
        """Columns of ``previous`` whose values this stage drops."""
        return dropped_columns(self.previous, self.target, self.column_map)

    def declared_indexes(self) -> set[str]:
        """Index names the stage's definitions declare (the table's others are kept)."""
        tables = (self.target, self.declared)
        return {str(index.name) for table in tables if table is not None for index in table.indexes}


@dataclass(frozen=True)
class Facts:
    """What the definitions can't tell a planner: the live catalog's answers, the run's needs.

    - ``dependents``: the tables whose FOREIGN KEYs reference the table,
      directly or through each other, as they are now (they keep their rows);
    - ``stored``: their own DDL as DuckDB keeps it (catalog.stored_tables): a
      dependent found there is recreated exactly from it, else from its
      definition (offline ``--sql``, where no catalog can be read);
    - ``kept_indexes``: CREATE INDEX of the table's indexes that no definition
      declares (a user's, another store's): rebuilt as they were;
    - ``renamable``: DuckDB can rename the table as it stands, so a rebuild
      may move it aside instead of stashing its rows;
    - ``changed_checks``: CHECKs that keep their name but not their
      expression (an in-place plan matches CHECKs by name);
    - ``inline_keys``: declare the table's keys in CREATE TABLE, because a
      rebuild later in the run references it (CopySwapPlan.deferred_keys).
    """

    dependents: Sequence[sa.Table] = ()
    stored: Mapping[str, StoredTable] = field(default_factory=dict)
    kept_indexes: Sequence[str] = ()
    renamable: bool = False
    changed_checks: frozenset[str] = frozenset()
    inline_keys: bool = False


@dataclass(frozen=True)
class Source:
    """Where a plan reads the table's rows when not from the table itself (fusion.py).

    ``origin``: a relation holding the rows as an earlier stage of the run
    leaves them, each with its row id in ``STAGE_ID``; ``rejected``: the
    table this plan's rejected rows go to; ``parents``: relations read
    instead of referenced tables whose rows the run has not written yet;
    ``reads``: the table name the rows are read under (the table moved
    aside); ``copy_origin``: ``origin`` read from the moved-aside table.
    """

    origin: str | None = None
    rejected: str = REJECTED
    parents: Mapping[str, str] = field(default_factory=dict)
    reads: str | None = None
    copy_origin: str | None = None


@dataclass(frozen=True)
class Rule:
    """One constraint the changed rows must satisfy, as SQL over the current data."""

    table: str
    kind: str  # conversion, NOT NULL, CHECK, PRIMARY KEY, UNIQUE, FOREIGN KEY
    name: str
    expression: str
    count_sql: str  # one row, one column: how many rows violate it
    sample_sql: str  # up to SAMPLE_SIZE rows: the keys of violating rows
    reject_sql: str  # quarantine mode: add the violating rows to REJECTED
    # A row-level rule (NOT NULL, CHECK, conversion) is a predicate over a
    # relation: rules over the same relation are counted in one scan.
    relation: str = ""
    predicate: str = ""
    #: offline fail mode: a statement that errors when rows violate the rule
    guard_sql: str = ""
    #: a cheaper count that is 0 only when ``count_sql``'s is; when it is not,
    #: ``count_sql`` counts (preflight.py)
    screen_sql: str = ""

    @property
    def reason(self) -> str:
        return f"{self.kind} {self.name}: {self.expression}"

    def refusal(self) -> str:
        """What the offline guard says when it stops a script."""
        return (
            f"create_copy_swap refused: rows of {self.table} violate {self.reason}. "
            "Nothing was changed; fix the data or run with -x on_violation=quarantine."
        )


#: What a step is for. quarantine: find rejected rows; move: put them in
#: <table>_quarantine (skipped online when there are none); finish: drop the
#: bookkeeping; alter and validate: PostgreSQL's in-place ALTER TABLE.
Phase = Literal[
    "quarantine",
    "move",
    "copy",
    "stash",
    "drop",
    "swap",
    "index",
    "comment",
    "cleanup",
    "finish",
    "alter",
    "validate",
]


@dataclass(frozen=True)
class Step:
    """One statement of the plan; ``phase`` says what it is for (logs, reports).

    ``online``: PostgreSQL only, the same change in a form that never scans
    under a lock the application waits on, run after the migration's
    transaction commits, each statement in a transaction of its own (or none,
    for CONCURRENTLY): see :mod:`egregora.database.migration.postgresql.aftercommit`.
    Where nothing can be deferred (an operation run outside env.py, a dry
    run), ``sql`` runs in the transaction instead.
    """

    phase: Phase
    table: str
    sql: str
    online: tuple[str, ...] = ()
    #: key indexes a CREATE TABLE builds, declaring its keys inline (DuckDB's fusion)
    keys: int = 0

    @property
    def indexes_built(self) -> int:
        """The indexes this step builds, for reports: an index step's, or inline keys."""
        return int(self.phase == "index") + self.keys


@dataclass(frozen=True)
class Variant:
    """A plan in one mode: the rules its rows must satisfy, the statements it runs."""

    rules: tuple[Rule, ...]
    steps: tuple[Step, ...]


class Variants(Mapping[OnViolation, Variant]):
    """Both modes of one plan, each planned from the same planner when first read.

    Lazily: a mode may not be plannable for every table (a quarantine table
    can't hold a column whose type SQLAlchemy can't spell), and a run asks
    for the other mode only when it needs it (lean, or a refused run).
    """

    def __init__(self, make: Callable[[OnViolation], Variant]) -> None:
        self._make = make
        self._planned: dict[OnViolation, Variant] = {}

    def __getitem__(self, mode: OnViolation) -> Variant:
        if mode not in self._planned:
            self._planned[mode] = self._make(mode)
        return self._planned[mode]

    def __iter__(self) -> Iterator[OnViolation]:
        return iter(get_args(OnViolation))

    def __len__(self) -> int:
        return len(get_args(OnViolation))

    def replaced(self, mode: OnViolation, variant: Variant) -> Variants:
        """The same plan with ``mode`` planned as ``variant``."""
        other = Variants(self._make)
        other._planned = {**self._planned, mode: variant}
        return other


@dataclass(frozen=True)
class CopySwapPlan:
    """The change in both modes (``variants``), read in ``on_violation``'s."""

    table: str
    tables: tuple[str, ...]  # the target first, then dependents in creation order
    on_violation: OnViolation
    variants: Variants
    count_sql: Mapping[str, str] = field(default_factory=dict)  # rows now, per table
    # Tables whose PRIMARY KEY/UNIQUE the plan adds by ALTER TABLE after the
    # copy. DuckDB 2.0 can't check a FOREIGN KEY against such a key later in
    # the same transaction (an INTERNAL error that invalidates the database),
    # so whoever references them in that transaction must re-key them first.
    deferred_keys: tuple[str, ...] = ()

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.variants[self.on_violation].rules

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.variants[self.on_violation].steps

    def in_mode(self, mode: OnViolation) -> CopySwapPlan:
        """The same change in the other mode (planned with this one)."""
        return dataclasses.replace(self, on_violation=mode)

    def without_steps(self, sql: set[str]) -> CopySwapPlan:
        """This mode's plan without the quarantine steps whose SQL is in ``sql``."""
        variant = self.variants[self.on_violation]
        steps = tuple(s for s in variant.steps if not (s.phase == "quarantine" and s.sql in sql))
        variants = self.variants.replaced(self.on_violation, Variant(variant.rules, steps))
        return dataclasses.replace(self, variants=variants)

    def statements(self) -> list[str]:
        return [step.sql for step in self.steps]

    def __str__(self) -> str:
        lines = [f"-- create_copy_swap {self.table} (on_violation={self.on_violation})"]
        lines += [f"-- rule: {rule.table}: {rule.reason}" for rule in self.rules]
        lines += [f"{step.sql};" for step in self.steps]
        return "\n".join(lines)
