"""What a create-copy-swap plan is made of: plain data, no database, no SQL writing.

A :class:`CopySwapPlan` holds the :class:`Rule` s the rows must satisfy and
the :class:`Step` s that change the table; :class:`RowPolicy` holds the
caller's choices about rows (which duplicate is kept, which columns name a
row in reports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa

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
    for CONCURRENTLY): see :mod:`egregora.database.migration.afterwards`.
    Where nothing can be deferred (an operation run outside env.py, a dry
    run), ``sql`` runs in the transaction instead.
    """

    phase: Phase
    table: str
    sql: str
    online: tuple[str, ...] = ()


@dataclass(frozen=True)
class CopySwapPlan:
    table: str
    tables: tuple[str, ...]  # the target first, then dependents in creation order
    on_violation: OnViolation
    rules: tuple[Rule, ...]
    steps: tuple[Step, ...]
    count_sql: Mapping[str, str] = field(default_factory=dict)  # rows now, per table
    # Tables whose PRIMARY KEY/UNIQUE the plan adds by ALTER TABLE after the
    # copy. DuckDB 2.0 can't check a FOREIGN KEY against such a key later in
    # the same transaction (an INTERNAL error that invalidates the database),
    # so whoever references them in that transaction must re-key them first.
    deferred_keys: tuple[str, ...] = ()

    def statements(self) -> list[str]:
        return [step.sql for step in self.steps]

    def __str__(self) -> str:
        lines = [f"-- create_copy_swap {self.table} (on_violation={self.on_violation})"]
        lines += [f"-- rule: {rule.table}: {rule.reason}" for rule in self.rules]
        lines += [f"{step.sql};" for step in self.steps]
        return "\n".join(lines)
