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
from egregora.database.migration import adoption
from egregora.database.migration.autogenerate.compare import (
    AUTOGENERATE_PLUGINS,
    process_revision_directives,
)
from egregora.database.migration.config import create_engine as make_engine
from egregora.database.migration.config import parse_url, resolve_url
from egregora.database.migration.copyswap.held import holding
from egregora.database.migration.copyswap.model import QUARANTINE_COLUMNS, QUARANTINE_SUFFIX
from egregora.database.migration.copyswap.preflight import violation_report
from egregora.database.migration.dialects import impl_class, ours
from egregora.database.migration.errors import (
    DRY_RUN_REFUSED,
    INTERRUPTED,
    ConstraintViolations,
    DatabaseUnavailable,
    DryRunRefused,
    MigrationFailed,
    first_line,
    in_our_words,
    is_interrupt,
    is_out_of_memory,
    out_of_memory,
)
from egregora.database.migration.impl import EgregoraImpl
from egregora.database.migration.interrupts import watched
from egregora.database.migration.options import RunOptions
from egregora.database.migration.policy import EGREGORA_ROWS
from egregora.database.migration.postgresql.impl import ALLOW_REWRITE_SETTING, MIGRATION_LOCK_KEY
from egregora.database.migration.postgresql.locks import is_lock_timeout
from egregora.database.migration.report import RevisionReport, RunReport, TableReport
from egregora.database.migration.runstate import RUN_OPTION, RunState

__all__ = [
    "ALLOW_REWRITE_SETTING",
    "MIGRATION_LOCK_KEY",
    "describe_open_error",
    "include_object",
    "quarantine_counts",
    "run",
]


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


def _configure_kwargs(
    context: EnvironmentContext, options: RunOptions, run: RunState
) -> dict[str, Any]:
    return {
        RUN_OPTION: run,
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
    state = RunState(options.on_violation, EGREGORA_ROWS)
    context.configure(
        url=parse_url(url),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_configure_kwargs(context, options, state),
    )
    impl = context.get_context().impl
    with context.begin_transaction():
        if isinstance(impl, EgregoraImpl):
            impl.start(options)
        context.run_migrations()
    if isinstance(impl, EgregoraImpl):
        impl.write_after_commit()


def run_online(context: EnvironmentContext, options: RunOptions) -> None:
    given = context.config.attributes.get("connection")
    if given is not None and not isinstance(given, sa.Engine):
        # a caller (the Alembic cookbook's way) lends a connection: used as it is
        _migrate(context, given, options, own=False)
        return
    if isinstance(given, sa.Engine):  # pytest-alembic lends an engine
        with given.connect() as connection:
            _migrate(context, connection, options)
        return
    url = resolve_url(context.get_x_argument(as_dictionary=True))
    engine = make_engine(url)
    with _connect(engine, url) as connection:
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


def _migrate(
    context: EnvironmentContext, connection: sa.Connection, options: RunOptions, own: bool = True
) -> None:
    """One run on ``connection``: the RunState made, the migrations in one transaction.

    ``own``: the run opened the connection, so it sets the connection's own
    settings (DuckDB's progress bar and memory limit).
    """
    engine = impl_class(connection)
    state = RunState(
        options.on_violation,
        EGREGORA_ROWS,
        RunReport(dry_run=options.dry_run, on_violation=options.on_violation),
        violations=[],  # fail mode: every revision's, then one report
        after_commit=engine.after_commit_queue(connection),
        naive_timestamps=options.naive_timestamps,
    )
    if own:
        engine.prepare(connection, options, state)
    revisions = _Revisions(state)
    finishing = state.after_commit is not None and not options.dry_run
    try:
        with watched() as ctrl_c:
            if finishing:  # what an earlier run left to finish comes first
                engine.finish_after_commit(connection, options)
            # Alembic calls on_version_apply with keywords (ctx=, step=, heads=, run_args=)
            configured = _configure_kwargs(context, options, state) | {
                "on_version_apply": revisions
            }
            context.configure(connection=connection, **configured)
            impl = ours(context.get_context().impl)
            if context.get_context().opts.get("dont_mutate"):  # `alembic current`: unadopted
                adoption.note_for_current(context)
            with context.begin_transaction():
                _run_migrations(context, impl, options, revisions)
                ctrl_c.check()  # a Ctrl-C Python dropped (interrupts.py): no COMMIT
            if finishing:
                engine.finish_after_commit(connection, options)
    except _DryRunDone:
        sys.stdout.write(revisions.report.to_text() + "\n")
        if revisions.report.refused:  # as `alembic check`: the rehearsal of a refused run fails
            raise DryRunRefused(DRY_RUN_REFUSED) from None
    except KeyboardInterrupt:
        raise MigrationFailed(INTERRUPTED) from None
    except (sa.exc.DBAPIError, RuntimeError) as exc:
        raise _refusal(exc, connection, state) from None
    finally:
        if connection.in_transaction():
            connection.rollback()
        if options.report:
            revisions.report.write_json(options.report)


def _run_migrations(
    context: EnvironmentContext, impl: EgregoraImpl, options: RunOptions, revisions: _Revisions
) -> None:
    """Inside the run's transaction: every revision, then one verdict on the whole run."""
    state, report = impl.run, revisions.report
    violations = state.violations if state.violations is not None else []
    impl.start(options)
    revisions.start(impl.conn)
    with holding(impl, enabled=options.fuse) as held:
        context.run_migrations()
        if held is not None:  # the rebuilds held back, each table written once
            started = time.perf_counter()
            held.flush_all()
            report.rebuild_seconds = round(time.perf_counter() - started, 3)
        revisions.count(impl.conn, held.given_up if held is not None else [])
        if held is not None:  # found table by table: told operation by operation
            violations.sort(key=lambda v: (revisions.position(v), held.position(v)))
    report.refused = [v.describe() for v in violations]
    if options.dry_run:  # everything ran: report it, then roll it all back
        raise _DryRunDone
    if violations:  # raised inside the transaction: everything rolls back
        raise ConstraintViolations(violation_report(violations))
    impl.record_after_commit()


def _refusal(exc: BaseException, connection: sa.Connection, state: RunState) -> BaseException:
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
        # DuckDB invalidates the database after a failed COMMIT: no rollback is
        # possible (nor needed: nothing was written); discard the connection
        # instead of letting the pool try one and log a traceback
        connection.invalidate()
        return MigrationFailed(out_of_memory(first_line(exc), state.memory_limit))
    return MigrationFailed(
        f"The database refused a statement and the migration was rolled back, so the "
        f"database is as it was before: {in_our_words(first_line(exc))}. Fix the revision or the "
        "data it trips on, then run the command again."
    )


class _Revisions:
    """Alembic's on_version_apply hook: how long each revision took, what it quarantined.

    Quarantined rows are counted in the ``<table>_quarantine`` tables
    themselves, by the revision each row is tagged with, so that the report
    matches them whoever moved the rows (create_copy_swap, or a revision's
    own SQL such as v4e's), and whenever (a held rebuild moves them at the
    end of the run, see copyswap/held.py).
    """

    def __init__(self, state: RunState) -> None:
        assert state.report is not None
        self.report = state.report
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

    def position(self, violation: Any) -> int:
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
