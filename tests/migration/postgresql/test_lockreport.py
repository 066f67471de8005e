"""PostgreSQL: each statement's lock, and whether it scans under it, as the dry run lists them."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from alembic import command
from egregora.database.migration.postgresql.lockreport import lock_of, note
from egregora.database.migration.report import RunReport

from ...test_everyday_loop import SEED, Project, execute, model


@pytest.mark.parametrize(
    ("sql", "lock", "blocks"),
    [
        ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID", "ACCESS EXCLUSIVE", False),
        ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)", "ACCESS EXCLUSIVE", True),
        ("ALTER TABLE t VALIDATE CONSTRAINT c", "SHARE UPDATE EXCLUSIVE", False),
        (
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES p (id) NOT VALID",
            "SHARE ROW EXCLUSIVE (on both tables)",
            False,
        ),
        ("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a)", "ACCESS EXCLUSIVE", True),
        ("ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX u", "ACCESS EXCLUSIVE", False),
        (
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS u ON t (a)",
            "SHARE UPDATE EXCLUSIVE",
            False,
        ),
        ("CREATE INDEX ix ON t (a)", "SHARE", True),
        ("ALTER TABLE t ALTER COLUMN a TYPE BIGINT USING a::bigint", "ACCESS EXCLUSIVE", True),
        ("ALTER TABLE t ADD COLUMN b VARCHAR", "ACCESS EXCLUSIVE", False),
        ("ALTER TABLE t ADD COLUMN b UUID DEFAULT gen_random_uuid()", "ACCESS EXCLUSIVE", True),
        ("DELETE FROM t WHERE ctid IN (SELECT rid FROM r)", "ROW EXCLUSIVE", False),
    ],
)
def test_each_statement_has_its_lock(sql: str, lock: str, blocks: bool) -> None:
    effect = lock_of(sql)
    assert effect is not None
    assert (effect.lock, effect.blocks) == (lock, blocks)


def test_a_statement_that_locks_nothing_the_application_waits_on() -> None:
    assert lock_of("SELECT count(*) FROM t") is None
    assert lock_of("DO $$ BEGIN IF (SELECT 1) > 0 THEN RAISE EXCEPTION 'x'; END IF; END $$") is None


def _dry_run(tmp_path: Path, pg_url: str, edit: str) -> tuple[str, str]:
    project = Project.create(tmp_path, pg_url)
    project.generate(model(), "r1base")
    command.upgrade(project.cfg(model()), "head")
    execute(pg_url, *SEED)
    after = model([edit])
    revision = project.generate(after, "r2edit")
    out = io.StringIO()
    with redirect_stdout(out):
        command.upgrade(project.cfg(after, dry_run="true"), "head")
    return revision, out.getvalue()


def test_a_rewriting_type_change_is_flagged_in_the_revision_and_the_dry_run(
    tmp_path: Path, pg_url: str
) -> None:
    revision, report = _dry_run(tmp_path, pg_url, "books.pages_bigint")
    assert "BLOCKS on PostgreSQL: ALTER COLUMN ... TYPE rewrites books" in revision
    assert "BLOCKS ALTER TABLE books ALTER COLUMN pages TYPE BIGINT" in report, report
    assert "rewrites the table" in report


def test_a_new_check_takes_its_exclusive_lock_for_the_catalog_only(
    tmp_path: Path, pg_url: str
) -> None:
    revision, report = _dry_run(tmp_path, pg_url, "media.size_check_col")
    assert "BLOCKS" not in revision and "BLOCKS" not in report, report
    assert "NOT VALID: ACCESS EXCLUSIVE, catalog only" in report
    assert "VALIDATE CONSTRAINT chk_media_size: SHARE UPDATE EXCLUSIVE, scans the table" in report


def test_rows_written_under_an_earlier_exclusive_lock_block() -> None:
    """A fill after ADD COLUMN asks for ROW EXCLUSIVE, but the transaction already holds
    ACCESS EXCLUSIVE on the table: the application waits for every row it writes."""
    report = RunReport(dry_run=True, on_violation="fail")
    note(report, "r1 upgrade", "UPDATE t SET a = 1")  # nothing held yet
    note(report, "r1 upgrade", "ALTER TABLE t ADD COLUMN b INTEGER")
    note(report, "r1 upgrade", 'UPDATE "t" SET b = a + 1')
    note(report, "r1 upgrade", "UPDATE u SET a = 1")  # another table
    note(report, "r1 upgrade", "INSERT INTO t_quarantine SELECT 1")  # our bookkeeping
    assert [(k.statement.split()[1], k.lock, k.blocks) for k in report.locks] == [
        ("t", "ROW EXCLUSIVE", False),
        ("TABLE", "ACCESS EXCLUSIVE", False),
        ('"t"', "ACCESS EXCLUSIVE", True),
        ("u", "ROW EXCLUSIVE", False),
    ]
