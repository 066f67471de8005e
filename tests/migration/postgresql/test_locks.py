"""PostgreSQL under live traffic: lock_timeout, retries, and naming the blocker (locks.py)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic import command
from egregora.database.migration.errors import InvalidOperation, MigrationFailed

from ...test_everyday_loop import SEED, Project, execute, model


@pytest.fixture
def project(tmp_path: Path, pg_url: str) -> Project:
    """The loop's test schema at r1base on PostgreSQL, with rows, and an edit to apply."""
    project = Project.create(tmp_path, pg_url)
    project.generate(model(), "r1base")
    command.upgrade(project.cfg(model()), "head")
    execute(pg_url, *SEED)
    project.generate(model(["media.size_check_col"]), "r2edit")
    return project


class Blocker:
    """A session idle in transaction after reading media: it holds ACCESS SHARE."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.connection = self.engine.connect()
        self.connection.exec_driver_sql("SELECT count(*) FROM media").all()
        self.pid = self.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

    def end_after(self, seconds: float) -> threading.Thread:
        def end() -> None:
            time.sleep(seconds)
            self.end()

        thread = threading.Thread(target=end)
        thread.start()
        return thread

    def end(self) -> None:
        if not self.connection.closed:
            self.connection.rollback()
            self.connection.close()
        self.engine.dispose()


def _version(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        versions = [
            r[0] for r in connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        ]
    engine.dispose()
    return versions


def test_a_blocker_that_stays_is_named_and_nothing_changes(project: Project, pg_url: str) -> None:
    after = model(["media.size_check_col"])
    blocker = Blocker(pg_url)
    waits: list[float] = []

    def application() -> None:
        """The site's reads on media while the migration tries its ALTER (each committed)."""
        engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
        with engine.connect() as connection:
            for _ in range(10):
                started = time.perf_counter()
                connection.exec_driver_sql("SELECT count(*) FROM media").all()
                connection.commit()
                waits.append(time.perf_counter() - started)
                time.sleep(0.05)
        engine.dispose()

    reader = threading.Thread(target=application)
    try:
        reader.start()
        with pytest.raises(MigrationFailed) as failed:
            command.upgrade(project.cfg(after, lock_timeout="200ms", lock_retries="1"), "head")
        reader.join()
    finally:
        blocker.end()
    message = str(failed.value)
    assert f"pid {blocker.pid} (idle in transaction" in message, message
    assert "lock_timeout = 200ms, after 2 tries" in message and "\n" not in message
    assert _version(pg_url) == ["r1base"]  # rolled back: nothing changed
    # the application's reads queued behind the ALTER at most for its lock_timeout
    # (without it they would wait as long as the blocker lives: the whole test)
    assert max(waits) < 0.2 + 0.4, waits


def test_a_blocker_that_ends_lets_the_retry_through(project: Project, pg_url: str) -> None:
    after = model(["media.size_check_col"])
    blocker = Blocker(pg_url)
    ending = blocker.end_after(0.5)
    try:
        command.upgrade(project.cfg(after, lock_timeout="200ms", lock_retries="4"), "head")
    finally:
        ending.join()
        blocker.end()
    assert _version(pg_url) == ["r2edit"]


def test_a_plain_operation_retries_too(project: Project, pg_url: str) -> None:
    command.upgrade(project.cfg(model(["media.size_check_col"])), "head")
    project.generate(model(["media.size_check_col", "media.kind_index"]), "r3index")
    blocker = Blocker(pg_url)
    blocker.connection.exec_driver_sql("LOCK TABLE media IN SHARE ROW EXCLUSIVE MODE")
    ending = blocker.end_after(0.5)
    try:
        command.upgrade(
            project.cfg(model(["media.size_check_col", "media.kind_index"]), lock_timeout="200ms"),
            "head",
        )
    finally:
        ending.join()
        blocker.end()
    assert _version(pg_url) == ["r3index"]


def test_offline_sql_sets_the_same_timeouts(project: Project, pg_url: str) -> None:
    cfg = project.cfg(model(["media.size_check_col"]), lock_timeout="3s", statement_timeout="10min")
    buffer = io.StringIO()
    cfg.output_buffer = buffer
    command.upgrade(cfg, "head", sql=True)
    script = buffer.getvalue()
    assert "SET LOCAL lock_timeout = '3s'" in script
    assert "SET LOCAL statement_timeout = '10min'" in script
    assert script.index("lock_timeout") < script.index("CREATE TABLE")


@pytest.mark.parametrize(
    ("option", "value"),
    [("lock_timeout", "soon"), ("statement_timeout", "5 hours"), ("lock_retries", "-1")],
)
def test_bad_lock_options_are_refused(project: Project, option: str, value: str) -> None:
    with pytest.raises(InvalidOperation, match=f"-x {option}="):
        command.upgrade(project.cfg(model(["media.size_check_col"]), **{option: value}), "head")
