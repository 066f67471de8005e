"""What ``alembic/env.py`` runs: online and offline migrations, on DuckDB or PostgreSQL.

Kept in the package, so that ``env.py`` stays a two-line file and this logic
is typed, linted and tested like the rest.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from logging.config import fileConfig
from typing import Any

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext

from egregora.database import schemas
from egregora.database.migration import (
    adoption,
    afterwards,
    impl,  # noqa: F401  (registers the DuckDB quirks)
)
from egregora.database.migration.autogenerate.compare import (
    AUTOGENERATE_PLUGINS,
    process_revision_directives,
)
from egregora.database.migration.catalog import driver
from egregora.database.migration.config import create_engine as make_engine
from egregora.database.migration.config import parse_url, resolve_url
from egregora.database.migration.copyswap.model import QUARANTINE_COLUMNS, QUARANTINE_SUFFIX
from egregora.database.migration.copyswap.pending import PendingRebuilds, holding_rebuilds
from egregora.database.migration.copyswap.preflight import Violation, violation_report
from egregora.database.migration.errors import (
    INTERRUPTED,
    MEMORY_LIMIT_INFO,
    ConstraintViolations,
    DatabaseUnavailable,
    MigrationFailed,
    first_line,
    is_interrupt,
    is_out_of_memory,
    out_of_memory,
)
from egregora.database.migration.locks import ONE_CORE, is_lock_timeout, wait_for_advisory_lock
from egregora.database.migration.options import RunOptions
from egregora.database.migration.policy import EGREGORA_ROWS
from egregora.database.migration.report import RevisionReport, RunReport, TableReport
from egregora.database.migration.runstate import (
    NAIVE_TIMESTAMPS_OPTION,
    ON_VIOLATION_OPTION,
    REPORT_OPTION,
    ROW_POLICY_OPTION,
    VIOLATIONS_OPTION,
)

#: PostgreSQL setting that lets a migration rewrite append-only tables (v4g).
ALLOW_REWRITE_SETTING = "egregora.allow_rewrite"
#: PostgreSQL advisory lock key held by a running migration ("egregora" in ASCII).
MIGRATION_LOCK_KEY = int.from_bytes(b"egregora", "big") >> 1


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Only what the metadata declares is compared.

    A table the database has and the metadata does not declare is someone
    else's (Egregora's other stores, a user's own, a ``<table>_quarantine``
    of rejected rows): ``alembic check`` and autogenerate never propose to
    drop it. To retire a table on purpose, write ``op.drop_table`` by hand
    (docs/writing-migrations.md).
    """
    if type_ == "index" and name is not None and reflected and compare_to is None:
        # An index the metadata does not declare is the schema's only when it
        # bears the schema's index name (the naming convention's ix_<table>_...):
        # then it was declared once and removed, and autogenerate drops it. Any
        # other (the Egregora application's idx_annotations_parent_created,
        # another store's, a user's) is not the schema's: never drift, never
        # proposed for dropping; rebuilds keep it (copyswap/engine.kept_indexes).
        return name.startswith(f"ix_{obj.table.name}_")
    if type_ != "table" or name is None:
        return True
    if name.endswith(QUARANTINE_SUFFIX):
        return False
    return not (reflected and compare_to is None)


def _configure_kwargs(context: EnvironmentContext, options: RunOptions) -> dict[str, Any]:
    return {
        ON_VIOLATION_OPTION: options.on_violation,
        ROW_POLICY_OPTION: EGREGORA_ROWS,
        NAIVE_TIMESTAMPS_OPTION: options.naive_timestamps,
        # tests (and tools) may compare against another metadata
        "target_metadata": context.config.attributes.get("target_metadata") or schemas.metadata,
        "include_object": include_object,
        "compare_type": True,
        "compare_server_default": True,
        "autogenerate_plugins": AUTOGENERATE_PLUGINS,
        "process_revision_directives": process_revision_directives,
    }


def run(context: EnvironmentContext) -> None:
    """Entry point called from ``alembic/env.py``."""
    if context.config.config_file_name is not None:
        fileConfig(context.config.config_file_name, disable_existing_loggers=False)
    options = RunOptions.from_x_args(context.get_x_argument(as_dictionary=True))
    if context.is_offline_mode():
        run_offline(context, options)
    else:
        run_online(context, options)


def run_offline(context: EnvironmentContext, options: RunOptions) -> None:
    url = resolve_url(context.get_x_argument(as_dictionary=True))
    context.configure(
        url=parse_url(url),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_kwargs(context, options),
    )
    postgresql = context.get_context().dialect.name == "postgresql"
    queue: list[afterwards.Deferred] = []
    if postgresql:  # scans and index builds go after the COMMIT (afterwards.py)
        context.get_context().opts[afterwards.AFTER_COMMIT] = queue
    with context.begin_transaction():
        if postgresql:
            for statement in options.lock_policy.offline_sql():
                context.execute(statement)
        context.run_migrations()
    if queue:
        context.execute(
            "-- after the commit, each on its own (CONCURRENTLY can't run in a transaction): "
            "the scans that prove the old rows, and the index builds"
        )
        with afterwards.own_statements():
            context.execute(f"SET lock_timeout = '{options.lock_policy.lock_timeout}'")
            context.execute(f"SET {ONE_CORE} = 0")
            for item in queue:
                context.execute(item.sql)


def run_online(context: EnvironmentContext, options: RunOptions) -> None:
    given = context.config.attributes.get("connection")
    if isinstance(given, sa.Engine):  # pytest-alembic lends an engine
        with given.connect() as connection:
            _show_progress(connection, options)
            _migrate(context, connection, options)
        return
    if given is not None:  # a caller (the Alembic cookbook's way) lends a connection
        _migrate(context, given, options)
        return
    url = resolve_url(context.get_x_argument(as_dictionary=True))
    engine = make_engine(url)
    with _connect(engine, url) as connection:
        _show_progress(connection, options)
        _migrate(context, connection, options)


@contextlib.contextmanager
def _connect(engine: sa.Engine, url: str) -> Iterator[sa.Connection]:
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise DatabaseUnavailable(describe_open_error(url, exc)) from None
    try:
        yield connection
    finally:
        connection.close()
        engine.dispose()


class _DryRunDone(Exception):  # noqa: N818  (control flow, never shown)
    """Raised inside the transaction to roll a dry run back."""


def _migrate(context: EnvironmentContext, connection: sa.Connection, options: RunOptions) -> None:
    violations: list[Violation] = []  # fail mode: every revision's, then one report
    report = RunReport(dry_run=options.dry_run, on_violation=options.on_violation)
    timer = _RevisionTimer(report)
    configured = _configure_kwargs(context, options)
    configured |= {VIOLATIONS_OPTION: violations, REPORT_OPTION: report, "on_version_apply": timer}
    queue = _deferral_queue(connection)
    finishing = queue is not None and not options.dry_run
    connection.info[REPORT_OPTION] = report  # the engines note each statement's lock
    try:
        if finishing:  # what an earlier run left to finish comes first
            afterwards.finish(connection, options.lock_policy, MIGRATION_LOCK_KEY)
        context.configure(connection=connection, **configured)
        if context.get_context().opts.get("dont_mutate"):  # `alembic current`: unadopted too
            adoption.note_for_current(context, connection)
        with context.begin_transaction():
            _serialize_and_allow_rewrite(connection, options)
            timer.start(connection)
            holding = holding_rebuilds(connection, violations, report, enabled=options.fuse)
            with holding as pending:
                context.run_migrations()
                timer.finish(connection, pending)
                if pending is not None:  # found table by table: told operation by operation
                    violations.sort(key=lambda v: (timer.position(v), pending.position(v)))
            report.refused = [v.describe() for v in violations]
            if options.dry_run:  # everything ran: report it, then roll it all back
                raise _DryRunDone
            if violations:  # raised inside the transaction: everything rolls back
                raise ConstraintViolations(violation_report(violations))
            afterwards.record(connection, queue or [])
        if finishing:
            afterwards.finish(connection, options.lock_policy, MIGRATION_LOCK_KEY)
    except _DryRunDone:
        sys.stdout.write(report.to_text() + "\n")
    except KeyboardInterrupt:
        raise MigrationFailed(INTERRUPTED) from None
    except (sa.exc.DBAPIError, RuntimeError) as exc:
        raise _refusal(exc, connection) from None
    finally:
        connection.info.pop(afterwards.AFTER_COMMIT, None)
        connection.info.pop(REPORT_OPTION, None)
        if connection.in_transaction():
            connection.rollback()
        if options.report:
            report.write_json(options.report)


def _deferral_queue(connection: sa.Connection) -> list[afterwards.Deferred] | None:
    """PostgreSQL, when this run owns its transactions: where scans wait for the commit.

    A connection lent in a transaction (the caller commits) finishes nothing
    after: its operations run whole, inside that transaction.
    """
    if connection.dialect.name != "postgresql" or connection.in_transaction():
        return None
    queue: list[afterwards.Deferred] = []
    connection.info[afterwards.AFTER_COMMIT] = queue
    return queue


def _refusal(exc: BaseException, connection: sa.Connection) -> BaseException:
    """The one-paragraph refusal for a database error that ended the run (rolled back)."""
    if is_interrupt(exc):
        return MigrationFailed(INTERRUPTED)
    if not isinstance(exc, sa.exc.DBAPIError):
        return exc
    if is_lock_timeout(exc):  # a plain operation gave up its lock wait too often
        return MigrationFailed(
            f"A statement could not get its lock ({first_line(exc)}), even after "
            "retries, and the migration was rolled back: nothing was changed. Another "
            "session holds a lock on the table (see pg_stat_activity); end it or wait "
            "for it, then run again; -x lock_timeout=... and -x lock_retries=... wait "
            "longer."
        )
    if is_out_of_memory(exc):
        limit = str(connection.info.get(MEMORY_LIMIT_INFO, "unknown"))
        # DuckDB invalidates the database after a failed COMMIT: no rollback is
        # possible (nor needed: nothing was written); discard the connection
        # instead of letting the pool try one and log a traceback
        connection.invalidate()
        return MigrationFailed(out_of_memory(first_line(exc), limit))
    return MigrationFailed(
        f"The database refused a statement and the migration was rolled back, so the "
        f"database is as it was before: {first_line(exc)}. Fix the revision or the "
        "data it trips on, then run the command again."
    )


def _serialize_and_allow_rewrite(connection: sa.Connection, options: RunOptions) -> None:
    """PostgreSQL: one migration at a time, allowed to rewrite append-only tables.

    Several deploys may run ``alembic upgrade head`` against one server at
    once. A transaction-level advisory lock, taken before Alembic reads
    ``alembic_version``, makes the others wait for the first to commit; they
    then find the database at head and do nothing. (DuckDB needs no lock:
    it allows one writing process per file.)

    Revision v4g's triggers refuse UPDATE and DELETE on the append-only
    tables unless the transaction-local setting ``egregora.allow_rewrite`` is
    on; migrations that quarantine rows or fill columns need it.
    ``set_config(..., true)`` and the lock both end with the transaction.
    Then the lock policy (locks.py): lock_timeout and statement_timeout.
    """
    if connection.dialect.name == "postgresql":
        wait_for_advisory_lock(connection, MIGRATION_LOCK_KEY, transaction=True)
        connection.exec_driver_sql(f"SELECT set_config('{ALLOW_REWRITE_SETTING}', 'on', true)")
        # after the advisory lock, which must wait for another deploy's whole run
        options.lock_policy.apply(connection)


class _RevisionTimer:
    """Alembic's on_version_apply hook: how long each revision took, what it quarantined.

    Quarantined rows are counted in the ``<table>_quarantine`` tables
    themselves, by the revision each row is tagged with, so that the report
    matches them whoever moved the rows (create_copy_swap, or a revision's
    own SQL such as v4e's), and whenever (a fused rebuild moves them at the
    end of the run, see pending.py).
    """

    def __init__(self, report: RunReport) -> None:
        self.report = report
        self.last = time.perf_counter()
        self.at_start: dict[tuple[str, str], int] = {}

    def start(self, connection: sa.Connection) -> None:
        self.at_start = quarantine_counts(connection)
        self.last = time.perf_counter()

    def __call__(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        now = time.perf_counter()
        revision = step.up_revision_id  # for a downgrade too: the revision undone
        self.report.revisions.append(
            RevisionReport(
                revision=str(revision),
                direction="upgrade" if step.is_upgrade else "downgrade",
                seconds=round(now - self.last, 3),
            )
        )
        self.last = time.perf_counter()

    def finish(self, connection: sa.Connection, pending: PendingRebuilds | None) -> None:
        """Write the run's held-back rebuilds (DuckDB), then count what each revision moved."""
        if pending is not None:
            started = time.perf_counter()
            pending.write_all(connection)
            self.report.rebuild_seconds = round(time.perf_counter() - started, 3)
        self.count(connection, pending.given_up if pending is not None else [])

    def position(self, violation: Violation) -> int:
        """Where the violation's revision came in the run (for the report's order)."""
        tags = [f"{r.revision} {r.direction}" for r in self.report.revisions]
        return tags.index(violation.revision) if violation.revision in tags else len(tags)

    def count(self, connection: sa.Connection, unwritten: Sequence[TableReport] = ()) -> None:
        """Each revision's quarantined rows, by their tag.

        ``unwritten``: a refused run's tables judged but never written, whose
        rows would have been quarantined (as a run without fusion moves them).
        """
        moved: dict[str, dict[str, int]] = {}
        for (table, tag), n in quarantine_counts(connection).items():
            extra = n - self.at_start.get((table, tag), 0)
            if extra:
                moved.setdefault(tag, {})[table] = extra
        for judged in unwritten:
            if judged.rows_quarantined:
                into = moved.setdefault(judged.revision, {})
                name = judged.table + QUARANTINE_SUFFIX
                into[name] = into.get(name, 0) + judged.rows_quarantined
        for entry in self.report.revisions:
            entry.quarantined = moved.get(f"{entry.revision} {entry.direction}", {})


def quarantine_counts(connection: sa.Connection) -> dict[tuple[str, str], int]:
    """Rows in each ``<table>_quarantine`` table, by the revision tag they carry."""
    preparer = connection.dialect.identifier_preparer
    inspector = sa.inspect(connection)
    counts: dict[tuple[str, str], int] = {}
    for name in inspector.get_table_names():
        if not name.endswith(QUARANTINE_SUFFIX):
            continue
        columns = {c["name"] for c in inspector.get_columns(name)}
        # a table of that name that is not ours carries no tag: counted as a whole
        tag = preparer.quote(QUARANTINE_COLUMNS[2]) if QUARANTINE_COLUMNS[2] in columns else "''"
        rows = connection.exec_driver_sql(
            f"SELECT {tag}, count(*) FROM {preparer.quote(name)} GROUP BY 1"
        ).all()
        counts.update({(name, str(revision)): int(n) for revision, n in rows})
    return counts


def _show_progress(connection: sa.Connection, options: RunOptions) -> None:
    if connection.dialect.name != "duckdb":
        return  # a DuckDB feature; a server reports progress in its own views
    # DuckDB prints its own progress bar (percent and a bar) to stdout for
    # queries that run longer than progress_bar_time, and does so by default
    # even into pipes and CI logs. Show it on a terminal only, after two
    # seconds (-x progress_after_ms=N changes that).
    enabled = "true" if sys.stdout.isatty() else "false"
    # Neither setting can be global: both are set on the driver's connection,
    # the one every statement of the run goes through. Setting
    # progress_bar_time switches the bar on, so it goes first.
    raw = driver(connection)
    if enabled == "true":
        raw.execute(f"SET progress_bar_time = {options.progress_after_ms}")
    raw.execute(f"SET enable_progress_bar = {enabled}")
    if options.memory_limit is not None:  # checked: a number and a unit
        raw.execute(f"SET memory_limit = '{options.memory_limit}'")
    row = raw.execute("SELECT current_setting('memory_limit')").fetchone()
    connection.info[MEMORY_LIMIT_INFO] = row[0] if row else "unknown"  # for an out-of-memory error
    connection.commit()  # end the autobegun transaction: Alembic begins its own


def describe_open_error(url: str, exc: BaseException) -> str:
    """One paragraph on why a database could not be opened (passwords hidden)."""
    detail = first_line(exc)
    shown = _shown(url)
    if "Could not set lock" in detail or "Conflicting lock" in detail:
        return (
            f"The database {shown!r} is in use by another process ({detail}). DuckDB allows "
            "one process to open a file for writing: stop the other process (its PID is "
            "given above when DuckDB knows it), then run the command again. Nothing was "
            "changed."
        )
    if "different configuration" in detail:
        return (
            f"The database {shown!r} is already open in this process with other settings "
            f"({detail}). Open it with the same settings (the same URL and engine "
            "options), or run the migration in its own process. Nothing was changed."
        )
    if "not a valid DuckDB database file" in detail:
        return (
            f"The file behind {shown!r} is not a DuckDB database ({detail}). Point "
            "-x url=... or EGREGORA_DATABASE_URL at an Egregora DuckDB file. Nothing "
            "was changed."
        )
    if "Connection refused" in detail or "could not connect" in detail.lower():
        return (
            f"Could not reach the database server of {shown!r} ({detail}). Check that the "
            "server is running and that the host and port in the URL are right. Nothing "
            "was changed."
        )
    if "does not exist" in detail and "database" in detail:
        return (
            f"The server answered, but the database named in {shown!r} does not exist "
            f"({detail}). Create it first (for example with createdb), or fix the URL. "
            "Nothing was changed."
        )
    if "authentication failed" in detail or "no password supplied" in detail:
        return (
            f"The server of {shown!r} refused the login ({detail}). Check the user and "
            "password in the URL (or PGPASSWORD / ~/.pgpass). Nothing was changed."
        )
    return f"Could not open the database {shown!r}: {detail}. Nothing was changed."


def _shown(url: str) -> str:
    """The URL as it may be printed: with any password masked."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return url
