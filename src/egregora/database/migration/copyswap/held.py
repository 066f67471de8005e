"""A run's DuckDB rebuilds, held back so that each table is written once (fusion.py).

Inside ``alembic upgrade`` (the environment installs a :class:`HeldRebuilds`
with :func:`holding`), a DuckDB ``create_copy_swap`` is checked at once, as
any operation is, but not run: it is held as the next
:class:`~.model.Stage` of its table (Alembic's batch mode records its
operations the same way, then applies them once). What is held is
*flushed*, that is written through :func:`.rebuild.rebuild`:

- before any statement that names the table (or its quarantine table, or a
  view or macro that reads it): a plain operation, ``op.execute``, a data
  migration through ``op.get_bind()``, a reflection. Such a statement is a
  *barrier* (the rules: :mod:`.barriers`; when in doubt, it is one): it must
  see the table as the revisions before it left it. A statement that reads
  the catalog is one for every held table;
- before a rebuild of a table that a held rebuild references: the
  reference was judged against the parent as it was then;
- before a rebuild of a table other tables reference now: those are rebuilt
  with it, from the catalog, so it runs at once;
- at the end of the run, before the commit, parents before children.

A fail-mode run first judges everything held (scans, no copy). Once it is
refused it writes only what a later statement must read with changed
values or without refused rows; at its end, nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from egregora.database.migration.catalog import (
    driver,
    view_and_macro_sources,
)
from egregora.database.migration.copyswap.barriers import (
    barrier,
    defines_reader,
    may_change_readers,
    readers_of,
)
from egregora.database.migration.copyswap.fusion import can_follow, plan_judged
from egregora.database.migration.copyswap.model import QUARANTINE_SUFFIX, Change, Stage
from egregora.database.migration.copyswap.planner import make_planner
from egregora.database.migration.copyswap.preflight import Violation
from egregora.database.migration.copyswap.rebuild import (
    Ledger,
    current_definition,
    judge,
    rebuild,
)
from egregora.database.migration.definitions import referred_table
from egregora.database.migration.errors import InvalidOperation, failing_as
from egregora.database.migration.impl import EgregoraImpl
from egregora.database.migration.report import TableReport
from egregora.database.migration.tablecache import TableCache

__all__ = ["HeldRebuilds", "has_table", "holding"]


@dataclass
class Verdict:
    """What judging a held table's stages found (a fail-mode run, see flush)."""

    stages: int = 0  # how many of its stages were judged
    clean: bool = True  # none of them rejects a row
    keeps: bool = True  # none of them changes a value or a column
    output: str = ""  # the rows they would leave: what its children's rules read
    #: each stage's table report, for the run's report if the table is not written
    reports: list[TableReport] = field(default_factory=list)


class HeldRebuilds:
    """The held stages of a run, by table, in the order they were first held."""

    def __init__(self, impl: EgregoraImpl) -> None:
        self.impl = impl
        self.ledger = Ledger.of(impl)
        self.tables: dict[str, list[Stage]] = {}
        self.busy = False  # our own statements are no barrier
        self.verdicts: dict[str, Verdict] = {}  # fail mode: what judge_all found
        self.scratch: dict[str, list[str]] = {}  # the temporary tables judging made
        #: table reports of a refused run's tables judged and never written
        self.given_up: list[TableReport] = []
        #: views and macros: the names their SQL reads (read again after any DDL)
        self.readers: dict[str, set[str]] | None = None
        #: (revision, table) -> when its first operation came: the report's order
        self.sequence: dict[tuple[str, str], int] = {}

    @contextlib.contextmanager
    def own(self) -> Iterator[None]:
        was, self.busy = self.busy, True
        try:
            yield
        finally:
            self.busy = was

    @contextlib.contextmanager
    def touching(self, names: Iterable[str]) -> Iterator[None]:
        """A block that reads or writes only the tables ``names`` and their catalog entries.

        The held tables a statement naming them would need are written
        first; the block's statements are then no barrier (its catalog reads
        concern ``names`` only, not every held table: Alembic's DuckDB
        drop_column reads the table's indexes first, which wrote them all).
        """
        wanted = {n.lower() for n in names}
        named = [t for t in self.tables if {t.lower(), (t + QUARANTINE_SUFFIX).lower()} & wanted]
        if named:
            self.flush(named)
        with self.own():
            yield

    # -- holding ----------------------------------------------------------------------------

    def pending(self, name: str) -> sa.Table | None:
        """The table as its held stages leave it; None when none are held."""
        stages = self.tables.get(name)
        return stages[-1].target if stages else None

    def hold(self, change: Change) -> bool:
        """Hold ``change`` as its table's next stage; False when it must run now.

        It is checked now as it would be if it ran (the table exists,
        previous= matches, the definition is valid), so an error still names
        its revision.
        """
        if self.busy:
            return False
        with self.own():
            stage = self.stage(change)
            if stage is None:
                return False
            make_planner(stage, self.impl.dialect)  # the checks every plan passes first
            self.sequence.setdefault((change.revision, change.table), len(self.sequence))
            self.tables.setdefault(change.table, []).append(stage)
            return True

    def stage(self, change: Change) -> Stage | None:
        """``change`` as its table's next stage; None when it must run now."""
        name = change.table
        children = self.children([name]) - {name}
        if children:  # they were judged against this table as it is now
            self.flush(children)
        stages = self.tables.get(name)
        if stages:
            stage = change.at(stages[-1].target)
            if can_follow(stages[-1], stage):
                _check_given_previous(change, stages[-1].target)
                return stage
            self.flush([name])
        referencing = self.impl.catalog(self.impl.conn).referencing(name)
        if referencing:  # rebuilt now, with them: as the run has left them so far
            self.flush([t for t in referencing if t in self.tables])
            return None
        return change.at(current_definition(self.impl, change))

    def position(self, violation: Violation) -> int:
        """Where the operation that found ``violation`` came in its revision."""
        key = (violation.revision, violation.follows or violation.table)
        return self.sequence.get(key, len(self.sequence))

    def references(self, table: str) -> set[str]:
        """The tables a held table's final definition references."""
        target = self.tables[table][-1].target
        return {referred_table(fk) for fk in target.foreign_key_constraints} - {table}

    def children(self, names: Iterable[str]) -> set[str]:
        """Held tables that reference any of ``names``."""
        wanted = set(names)
        return {t for t in self.tables if self.references(t) & wanted}

    # -- flushing ---------------------------------------------------------------------------

    def flush(
        self,
        names: Iterable[str],
        *,
        midway: bool = True,
        catalog: bool = False,
        columns_only: bool = False,
    ) -> None:
        """Write the held tables ``names``, their held children, and their parents.

        ``midway``: the run goes on after this, and a later rebuild may
        reference these tables: their keys are declared in CREATE TABLE
        (as fast as adding them after, measured at 150,000 rows), which spares
        re-keying them then (a second copy, see rebuild.rekey).
        ``catalog``: only the catalog is read (a refused run then writes
        nothing: its later revisions are judged on the catalog as it stands).
        ``columns_only``: the statement reads the tables' columns, not their
        rows (it creates a view): when their stages keep every column and
        value, nothing is written now. A refused run then writes nothing (v4j's
        view wrote post_authors, annotations and profiles: a refused run took
        0.7x a quarantine run, not 0.3x); any other writes them at its end,
        with their keys added after the copy rather than declared before it
        (post_authors' 3M rows: 2.6 s into a keyed table). A statement that
        reads the rows later, through the view, writes them.
        """
        chosen = self.closure(names)
        with self.own():
            judged = self.judging()
            if judged:
                self.judge_all()
            refused = judged and bool(self.ledger.violations)
            if (refused and catalog) or (columns_only and self.keep_columns(chosen)):
                return
            for table in self.order(chosen):
                with failing_as(self.failure(table), self.impl.run.memory_limit):
                    self.write_table(table, midway, judged, refused)

    def keep_columns(self, tables: Iterable[str]) -> bool:
        """Whether every stage of ``tables`` keeps each column and value as it is: as
        judged, else as planned (a quarantine run judges nothing ahead)."""
        return all(self.keeps(t) for t in tables)

    def keeps(self, table: str) -> bool:
        verdict, stages = self.verdicts.get(table), self.tables[table]
        if verdict is not None and verdict.stages == len(stages):
            return verdict.keeps
        return all(p.keeps_values for p in plan_judged(stages, dialect=self.impl.dialect))

    def flush_all(self) -> None:
        """The end of the run: everything held, before the commit."""
        self.flush(list(self.tables), midway=False)

    def closure(self, names: Iterable[str]) -> set[str]:
        """``names`` held, with the held children judged against them and the parents they read."""
        chosen = {n for n in names if n in self.tables}
        while True:
            more = self.children(chosen) | {p for t in chosen for p in self.references(t)}
            more = (more & set(self.tables)) - chosen
            if not more:
                return chosen
            chosen |= more

    def write_table(self, table: str, midway: bool, judged: bool, refused: bool) -> None:
        """One table of :meth:`flush`: written, written as if quarantining, or given up."""
        verdict = self.verdicts.pop(table, None)
        if not refused:
            self.write_one(table, midway, judged=judged)
        elif midway and not (verdict is not None and verdict.clean and verdict.keeps):
            # a later statement reads it: as if quarantining; judging has collected its
            # violations, counted what it drops and reported it already
            self.write_one(table, midway, ledger=Ledger([], None))
            self.keep_reports(verdict, moved=False)
        else:  # refused: the run is rolled back, no copy is needed
            del self.tables[table]
            self.keep_reports(verdict, moved=True)
        self.drop_scratch(table)

    def write_one(
        self, table: str, midway: bool, *, judged: bool = False, ledger: Ledger | None = None
    ) -> None:
        """Write one table's stages (``ledger``: instead of the run's)."""
        stages = self.tables.pop(table)
        # keys declared in CREATE TABLE when a rebuild still to come may reference it
        inline = midway or bool(self.children([table]))
        rebuild(self.impl, stages, ledger or self.ledger, inline_keys=inline, judged=judged)

    def failure(self, table: str) -> str:
        """How a database error while writing or judging ``table`` is told (one paragraph).

        Raised at the end of the run, or at a barrier, it would otherwise
        surface as the driver's traceback.
        """
        revisions = ", ".join(dict.fromkeys(s.revision for s in self.tables.get(table, [])))
        return f"create_copy_swap on {table} (from {revisions}) failed"

    # -- judging (a fail-mode run) ------------------------------------------------------------

    def judging(self) -> bool:
        """A fail-mode run that collects every violation before refusing (env.py's)."""
        stages = [s for held in self.tables.values() for s in held]
        return self.ledger.violations is not None and all(s.on_violation == "fail" for s in stages)

    def judge_all(self) -> None:
        """Judge the stages not judged yet, parents first; collect their violations."""
        for table in self.order(set(self.tables)):
            with failing_as(self.failure(table), self.impl.run.memory_limit):
                self.judge_table(table)

    def judge_table(self, table: str) -> None:
        """Judge ``table``'s stages not judged yet (judge_all)."""
        stages = self.tables[table]
        verdict = self.verdicts.setdefault(table, Verdict())
        if verdict.stages == len(stages):
            return
        parents = {t: v.output for t, v in self.verdicts.items() if t != table and v.output}
        plans = plan_judged(stages, dialect=self.impl.dialect, parents=parents)
        new = plans[verdict.stages :]
        verdict.clean &= judge(self.impl, new, self.ledger, verdict.reports)
        verdict.keeps &= all(p.keeps_values for p in new)
        verdict.stages, verdict.output = len(stages), plans[-1].output
        self.scratch.setdefault(table, []).extend(p.rejected for p in new)

    def keep_reports(self, verdict: Verdict | None, moved: bool) -> None:
        """A refused run's judged table: its stages' reports, as if each had run.

        ``moved``: the table is not written, so its stages' rejected rows are
        not in any quarantine table: they are counted as the revisions' all the
        same (``given_up``), as a run without fusion would have moved them.
        """
        report = self.ledger.report
        if report is None or verdict is None:
            return
        report.tables += verdict.reports
        if moved:
            self.given_up += verdict.reports

    def drop_scratch(self, table: str) -> None:
        """The judged row ids of a table written (or given up): no longer read."""
        for name in self.scratch.pop(table, []):
            self.impl.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.impl.quote(name)}")

    def order(self, chosen: set[str]) -> list[str]:
        """Parents before children, else in the order first held."""
        done: list[str] = []
        waiting = [t for t in self.tables if t in chosen]
        while waiting:
            ready = [t for t in waiting if not (self.references(t) & set(waiting))]
            table = (ready or waiting)[0]  # a cycle can't be: DuckDB refuses one
            done.append(table)
            waiting.remove(table)
        return done

    # -- barriers -----------------------------------------------------------------------------

    def before_statement(self, statement: str) -> None:
        """Before ``statement`` runs: write the held tables it reads or writes (barriers.py)."""
        if self.busy:
            return
        if may_change_readers(statement):
            self.readers = None
        if not self.tables:
            return
        if self.readers is None:
            self.readers = readers_of(view_and_macro_sources(driver(self.impl.conn)))
        found = barrier(statement, self.tables, self.readers)
        if found.tables:
            self.flush(found.tables, columns_only=defines_reader(statement))
        if found.reads_catalog:
            self.flush(list(self.tables), catalog=True)


def has_table(impl: EgregoraImpl, name: str) -> bool:
    """Whether the table ``name`` exists, as the run's operations so far leave it.

    A catalog read has every held rebuild written first (barriers.py); this
    writes only the held table whose rebuild may create ``name`` (its
    quarantine table): v4e asks for posts_quarantine, which wrote journals,
    profiles, media, tasks and annotations, written again by v4f, v4h and v4i.
    """
    held = impl.run.held
    with held.touching([name]) if held is not None else contextlib.nullcontext():
        return name in impl.catalog(impl.conn).tables_and_views()[0]


@contextlib.contextmanager
def holding(impl: EgregoraImpl, *, enabled: bool = True) -> Iterator[HeldRebuilds | None]:
    """While the block runs, DuckDB rebuilds are held; the caller flushes them at its end.

    Only where the engine rebuilds tables (DuckDB), unless ``enabled`` is
    false (``-x fuse=false``); elsewhere nothing is held (yields None).
    """
    if not enabled or not impl.holds_rebuilds:
        yield None
        return
    held = HeldRebuilds(impl)
    tables = TableCache()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        tables.after(statement)
        held.before_statement(statement)

    connection = impl.conn
    impl.run.held, impl.run.tables = held, tables
    sa.event.listen(connection, "before_cursor_execute", before)
    try:
        yield held
    finally:
        sa.event.remove(connection, "before_cursor_execute", before)
        impl.run.held, impl.run.tables = None, None


def _check_given_previous(change: Change, previous: sa.Table) -> None:
    given = change.declared
    if given is not None and set(given.columns.keys()) != set(previous.columns.keys()):
        raise InvalidOperation(
            f"create_copy_swap on {given.name}: previous= describes columns "
            f"{', '.join(given.columns.keys())}, but after this run's earlier operations the "
            f"table has {', '.join(previous.columns.keys())}. Check the revision's previous= "
            "against the revision before it."
        )
