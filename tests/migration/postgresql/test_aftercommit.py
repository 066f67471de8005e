"""PostgreSQL: what a run finishes after its commit, and how a failure there is finished later."""

from __future__ import annotations

import io
import time
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic import command
from egregora.database.migration.environment import MIGRATION_LOCK_KEY
from egregora.database.migration.errors import MigrationFailed
from egregora.database.migration.postgresql.aftercommit import (
    PENDING_TABLE,
    AfterCommit,
    finish,
    pending,
    record,
    take,
)
from egregora.database.migration.postgresql.locks import LockPolicy

from ...test_everyday_loop import SEED, Project, execute, model
from ...test_postgresql import pg_sql

UNIQUE = "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ux_t_a ON t (a)"
ATTACH = "ALTER TABLE t ADD CONSTRAINT ux_t_a UNIQUE USING INDEX ux_t_a"


def _finish(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return finish(connection, LockPolicy(lock_timeout="1s", retries=0), MIGRATION_LOCK_KEY)
    finally:
        engine.dispose()


def _record(url: str, *items: AfterCommit) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        record(connection, list(items))
    engine.dispose()


def test_a_failed_build_is_left_listed_and_invalid_then_rebuilt(pg_url: str) -> None:
    pg_sql(pg_url, "CREATE TABLE t (a INTEGER)", "INSERT INTO t VALUES (1), (1), (2)")
    _record(pg_url, AfterCommit("r1 upgrade", "t", UNIQUE), AfterCommit("r1 upgrade", "t", ATTACH))

    with pytest.raises(MigrationFailed) as failed:
        _finish(pg_url)
    message = str(failed.value)
    assert "committed" in message and "ux_t_a" in message and "again" in message
    assert "\n" not in message
    # exactly what is left: both statements listed, the index there but INVALID
    assert [r[0] for r in pg_sql(pg_url, f"SELECT sql FROM {PENDING_TABLE} ORDER BY 1")] == sorted(
        [UNIQUE, ATTACH]
    )
    assert pg_sql(
        pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_a'::regclass"
    ) == [(False,)]

    pg_sql(pg_url, "DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t WHERE a = 1)")
    assert _finish(pg_url) == 2
    assert pg_sql(pg_url, "SELECT contype FROM pg_constraint WHERE conname = 'ux_t_a'") == [("u",)]
    assert pg_sql(pg_url, f"SELECT to_regclass('{PENDING_TABLE}')") == [(None,)]
    assert _finish(pg_url) == 0  # nothing left: a no-op


def test_take_gives_back_the_in_transaction_forms_of_one_table() -> None:
    queue = [
        AfterCommit("r", "t", UNIQUE),
        AfterCommit("r", "u", "ALTER TABLE u VALIDATE CONSTRAINT c"),
        AfterCommit("r", "t", ATTACH),
    ]
    assert take(queue, {"t"}) == ["CREATE UNIQUE INDEX IF NOT EXISTS ux_t_a ON t (a)", ATTACH]
    assert [d.table for d in queue] == ["u"]
    assert take(None, {"t"}) == []


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Project:
    project = Project.create(tmp_path, pg_url)
    project.generate(model(), "r1base")
    command.upgrade(project.cfg(model()), "head")
    execute(pg_url, *SEED)
    return project


def test_the_next_upgrade_finishes_what_a_run_left(project: Project, pg_url: str) -> None:
    """As if a run died after its commit: the next `alembic upgrade` finishes first."""
    pg_sql(pg_url, "ALTER TABLE media ADD CONSTRAINT chk_left CHECK (size >= 0) NOT VALID")
    _record(
        pg_url,
        AfterCommit("r1base upgrade", "media", "ALTER TABLE media VALIDATE CONSTRAINT chk_left"),
    )
    assert [d.sql for _, d in _pending(pg_url)] == [
        "ALTER TABLE media VALIDATE CONSTRAINT chk_left"
    ]

    command.upgrade(project.cfg(model()), "head")  # nothing new to run: it finishes
    assert pg_sql(pg_url, "SELECT convalidated FROM pg_constraint WHERE conname = 'chk_left'") == [
        (True,)
    ]
    assert pg_sql(pg_url, f"SELECT to_regclass('{PENDING_TABLE}')") == [(None,)]


def _pending(url: str) -> list[tuple[int, AfterCommit]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        found = pending(connection)
    engine.dispose()
    return found


@pytest.mark.parametrize(
    ("edit", "deferred", "absent", "done"),
    [
        (
            "authors.email_unique",
            "CREATE UNIQUE INDEX CONCURRENTLY",
            "SELECT count(*) FROM pg_class WHERE relname = 'uq_authors_email'",
            "SELECT contype FROM pg_constraint WHERE conname = 'uq_authors_email'",
        ),
        (
            "media.kind_index",
            "CREATE INDEX CONCURRENTLY",
            "SELECT count(*) FROM pg_class WHERE relname = 'ix_media_kind'",
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_media_kind'::regclass",
        ),
        (
            "media.size_check_col",
            "VALIDATE CONSTRAINT",
            "SELECT count(*) FROM pg_constraint WHERE conname = 'chk_media_size'",
            "SELECT convalidated FROM pg_constraint WHERE conname = 'chk_media_size'",
        ),
    ],
)
def test_a_dry_run_lists_what_would_follow_the_commit_and_does_none_of_it(
    project: Project, pg_url: str, edit: str, deferred: str, absent: str, done: str
) -> None:
    after = model([edit])
    project.generate(after, "r2edit")
    out = io.StringIO()
    with redirect_stdout(out):
        command.upgrade(project.cfg(after, dry_run="true"), "head")
    report = out.getvalue()
    assert "after the commit, each on its own" in report, report
    assert deferred in report
    assert pg_sql(pg_url, absent) == [(0,)]  # rolled back: nothing built or validated
    assert pg_sql(pg_url, f"SELECT to_regclass('{PENDING_TABLE}')") == [(None,)]

    command.upgrade(project.cfg(after), "head")  # the real run: deferred, then finished
    assert pg_sql(pg_url, done)[0][0] in ("u", True)
    assert pg_sql(pg_url, f"SELECT to_regclass('{PENDING_TABLE}')") == [(None,)]


def test_a_blocker_stops_the_finishing_which_the_next_run_completes(
    project: Project, pg_url: str
) -> None:
    """CREATE INDEX CONCURRENTLY waits for transactions that wrote to the table: one
    idle in transaction makes it give up (lock_timeout, retries), leaving it listed.
    (A session that only read does not stop it: measured, it builds.)"""
    after = model(["media.kind_index"])
    project.generate(after, "r2edit")
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    blocker = engine.connect()
    blocker.exec_driver_sql("UPDATE media SET kind = kind WHERE false")  # ROW EXCLUSIVE, held
    try:
        started = time.perf_counter()
        with pytest.raises(MigrationFailed) as failed:
            command.upgrade(project.cfg(after, lock_timeout="300ms", lock_retries="1"), "head")
        waited = time.perf_counter() - started
    finally:
        blocker.rollback()
        blocker.close()
        engine.dispose()
    message = str(failed.value)
    assert "committed" in message and "ix_media_kind" in message, message
    assert "idle in transaction" in message and "UPDATE media" in message  # who, named
    assert "rolled back" not in message and "\n" not in message
    assert waited < 10
    assert _pending(pg_url), "what is left stays listed"
    assert pg_sql(pg_url, "SELECT version_num FROM alembic_version") == [("r2edit",)]

    command.upgrade(project.cfg(after), "head")  # the blocker is gone: it finishes
    assert pg_sql(
        pg_url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_media_kind'::regclass"
    ) == [(True,)]
    assert pg_sql(pg_url, f"SELECT to_regclass('{PENDING_TABLE}')") == [(None,)]
    command.check(project.cfg(after))


def test_take_finds_a_deferred_build_by_its_index_name_too() -> None:
    queue = [
        AfterCommit(
            "r", "Media", 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "IX_kind" ON "Media" (k)'
        )
    ]
    assert take(queue, {"ix_other"}) == []
    assert take(queue, {"ix_kind"}) == ['CREATE INDEX IF NOT EXISTS "IX_kind" ON "Media" (k)']
    assert queue == []


def test_an_index_made_and_dropped_in_one_run(project: Project, pg_url: str) -> None:
    """r2 adds an index (deferred past the commit), r3 drops it: DROP INDEX names only
    the index, and takes the build back into the transaction first."""
    project.generate(model(["media.kind_index"]), "r2index")
    command.upgrade(project.cfg(model(["media.kind_index"])), "head")
    project.generate(model(), "r3noindex")
    command.downgrade(project.cfg(model()), "r1base")
    command.upgrade(project.cfg(model()), "head")  # r2 and r3 in one run
    assert pg_sql(pg_url, "SELECT count(*) FROM pg_class WHERE relname = 'ix_media_kind'") == [(0,)]
    assert pg_sql(pg_url, f"SELECT to_regclass('{PENDING_TABLE}')") == [(None,)]
    command.check(project.cfg(model()))
