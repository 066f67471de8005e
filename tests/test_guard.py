"""The append-only guard: its statement check alone, then on real, migrated DuckDB files."""

from __future__ import annotations

import pickle
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic import command
from egregora.database import schemas
from egregora.database.guard import (
    ALLOW_REWRITE,
    AppendOnlyViolation,
    append_only_tables,
    changed_append_only_table,
    has_append_only_guard,
    install_append_only_guard,
    remove_append_only_guard,
)

from .conftest import alembic_cfg

TABLES = frozenset({"journals", "annotations"})
T0 = datetime(2024, 1, 1, tzinfo=UTC)

# --- the statement check, without a database -------------------------------------------

REFUSED = [
    ("UPDATE journals SET title = 'x'", ("UPDATE", "journals")),
    ("update ONLY journals set title = 'x'", ("UPDATE", "journals")),
    ("UPDATE main.journals SET title = 'x'", ("UPDATE", "journals")),
    ('UPDATE "main"."journals" SET title = 1', ("UPDATE", "journals")),
    ('UPDATE "JOURNALS" SET title = 1', ("UPDATE", "journals")),  # DuckDB: same table
    ("DELETE FROM annotations WHERE id = 'a'", ("DELETE", "annotations")),
    ('delete from "journals"', ("DELETE", "journals")),
    ("DELETE FROM ONLY journals", ("DELETE", "journals")),
    ("TRUNCATE journals", ("TRUNCATE", "journals")),
    ("TRUNCATE TABLE ONLY main.annotations", ("TRUNCATE", "annotations")),
    ("TRUNCATE posts, journals", ("TRUNCATE", "journals")),
    ("WITH x AS (SELECT 1) DELETE FROM journals", ("DELETE", "journals")),
    ("WITH d AS (DELETE FROM annotations RETURNING *) SELECT * FROM d", ("DELETE", "annotations")),
    ("SELECT 1; UPDATE journals SET title = NULL", ("UPDATE", "journals")),
    ("SELECT 'it''s'; DELETE FROM journals", ("DELETE", "journals")),
    ("/* a comment */ DELETE -- another\n FROM journals", ("DELETE", "journals")),
    (
        "INSERT INTO journals (id) VALUES ('j') ON CONFLICT (id) DO UPDATE SET title = 'x'",
        ("INSERT ... ON CONFLICT DO UPDATE", "journals"),
    ),
    ("insert or replace into journals values ('j')", ("INSERT OR REPLACE", "journals")),
    (
        "MERGE INTO journals USING s ON journals.id = s.id WHEN MATCHED THEN UPDATE SET title = 1",
        ("MERGE", "journals"),
    ),
    (
        "MERGE INTO annotations a USING s ON a.id = s.id WHEN MATCHED THEN DELETE",
        ("MERGE", "annotations"),
    ),
]

ALLOWED = [
    "INSERT INTO journals (id, created_at) VALUES ('j', now())",
    "INSERT INTO journals SELECT * FROM journals_quarantine",
    "INSERT INTO journals VALUES ('j') ON CONFLICT DO NOTHING",
    "INSERT OR IGNORE INTO journals VALUES ('j')",
    "SELECT * FROM journals",
    "SELECT * FROM journals FOR UPDATE",
    "UPDATE posts SET status = 'published'",
    "UPDATE journals_quarantine SET title = 'x'",
    "DELETE FROM my_journals",
    "UPDATE posts SET title = 'delete from journals'",
    "UPDATE posts SET title = 'it''s; delete from journals'",
    'UPDATE posts SET "update journals" = 1',
    "UPDATE posts SET journals = 1 FROM journals",
    "DELETE FROM posts USING journals WHERE posts.id = journals.id",
    "-- DELETE FROM journals\nSELECT 1",
    "/* outer /* nested */ DELETE FROM journals */ SELECT 1",
    "SELECT $$ DELETE FROM journals $$",
    "SELECT E'\\' DELETE FROM journals'",
    "DROP TABLE journals",
    "MERGE INTO journals USING s ON journals.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)",
    "WITH u AS (INSERT INTO posts VALUES ('p') ON CONFLICT DO UPDATE SET title = 'x') "
    "INSERT INTO journals SELECT * FROM u",
]


@pytest.mark.parametrize(("statement", "expected"), REFUSED)
def test_check_refuses(statement: str, expected: tuple[str, str]) -> None:
    assert changed_append_only_table(statement, TABLES) == expected


@pytest.mark.parametrize("statement", ALLOWED)
def test_check_allows(statement: str) -> None:
    assert changed_append_only_table(statement, TABLES) is None


def test_check_only_knows_the_tables_it_is_given() -> None:
    assert changed_append_only_table("DELETE FROM journals", frozenset({"posts"})) is None
    assert changed_append_only_table("DELETE FROM posts", frozenset({"posts"})) == (
        "DELETE",
        "posts",
    )
    assert changed_append_only_table("DELETE FROM journals", frozenset()) is None


def test_append_only_tables_read_table_info() -> None:
    assert append_only_tables() == frozenset(schemas.APPEND_ONLY_TABLES) == TABLES
    other = sa.MetaData()
    sa.Table("log", other, sa.Column("id", sa.Integer), info={schemas.APPEND_ONLY: True})
    sa.Table("state", other, sa.Column("id", sa.Integer))
    sa.Table("off", other, sa.Column("id", sa.Integer), info={schemas.APPEND_ONLY: False})
    assert append_only_tables(other) == {"log"}


def test_violation_message_is_one_paragraph_that_says_what_to_do() -> None:
    error = AppendOnlyViolation("UPDATE", "journals")
    message = str(error)
    assert isinstance(error, sa.exc.InvalidRequestError)
    assert "\n" not in message
    assert message.startswith("Refused: UPDATE on journals, an append-only table")
    assert "Insert a new row instead" in message
    assert f"{ALLOW_REWRITE}=True" in message
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.verb, copy.table, str(copy)) == ("UPDATE", "journals", message)


# --- on a real, migrated DuckDB file ----------------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file upgraded to head by the project's migrations, once per module."""
    path = tmp_path_factory.mktemp("guard") / "head.duckdb"
    command.upgrade(alembic_cfg(f"duckdb:///{path}"), "head")
    return path


@pytest.fixture
def fresh_db(migrated: Path, db_path: Path, db_url: str) -> str:
    """A copy of the migrated file for one test; its URL."""
    for source in migrated.parent.glob(migrated.name + "*"):  # the file and any WAL
        shutil.copy(source, db_path.parent / source.name.replace(migrated.name, db_path.name))
    return db_url


@pytest.fixture
def engine(fresh_db: str) -> Iterator[sa.Engine]:
    """An engine with the guard, on a migrated file with a journal, annotation, post, task."""
    engine = sa.create_engine(fresh_db)
    with engine.begin() as conn:
        conn.execute(sa.insert(schemas.journals).values(journal("j1", "first")))
        conn.execute(
            sa.insert(schemas.annotations).values(
                id="a1", content="note", created_at=T0, parent_id="p1", parent_type="post"
            )
        )
        conn.execute(
            sa.insert(schemas.posts).values(id="p1", title="A post", status="draft", created_at=T0)
        )
        conn.execute(
            sa.insert(schemas.tasks).values(
                task_id=uuid.uuid4(), task_type="enrich_media", status="pending", created_at=T0
            )
        )
    install_append_only_guard(engine)
    yield engine
    engine.dispose()


def journal(id: str, title: str) -> dict[str, object]:
    return {
        "id": id,
        "title": title,
        "created_at": T0,
        "window_start": T0,
        "window_end": T0 + timedelta(hours=1),
    }


def titles(engine: sa.Engine) -> dict[str, str]:
    """The journals' titles by id, read on a new connection."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(schemas.journals.c.id, schemas.journals.c.title)).all())


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


UPDATE_JOURNAL = sa.update(schemas.journals).where(schemas.journals.c.id == "j1")


def test_insert_into_journals_works(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(schemas.journals).values(journal("j2", "second")))
        conn.execute(
            sa.insert(schemas.annotations).values(
                id="a2", content="edit", created_at=T0, parent_id="a1", parent_type="annotation"
            )
        )
    assert titles(engine) == {"j1": "first", "j2": "second"}
    assert count(engine, "annotations") == 2


def test_update_of_a_journal_is_refused_and_nothing_changes(engine: sa.Engine) -> None:
    refusal = pytest.raises(AppendOnlyViolation, match="UPDATE on journals")
    with refusal as refused, engine.begin() as conn:
        conn.execute(UPDATE_JOURNAL.values(title="rewritten"))
    assert (refused.value.verb, refused.value.table) == ("UPDATE", "journals")
    assert titles(engine) == {"j1": "first"}


def test_a_refusal_sends_nothing_and_leaves_the_transaction_usable(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(schemas.journals).values(journal("j2", "second")))
        with pytest.raises(AppendOnlyViolation):
            conn.execute(UPDATE_JOURNAL.values(title="rewritten"))
        conn.execute(sa.insert(schemas.journals).values(journal("j3", "third")))
    assert titles(engine) == {"j1": "first", "j2": "second", "j3": "third"}


@pytest.mark.parametrize(
    "statement",
    [
        sa.delete(schemas.annotations),
        sa.delete(schemas.journals).where(schemas.journals.c.id == "j1"),
        sa.text('DELETE FROM "journals"'),
        sa.text("UPDATE main.journals SET title = :t").bindparams(t="x"),
        sa.text("TRUNCATE journals"),
        sa.text(
            "INSERT OR REPLACE INTO journals (id, created_at, title) VALUES ('j1', now(), 'x')"
        ),
        sa.text(
            "INSERT INTO journals (id, created_at, title) VALUES ('j1', now(), 'x') "
            "ON CONFLICT (id) DO UPDATE SET title = excluded.title"
        ),
        sa.text(
            "MERGE INTO journals USING (SELECT 'j1' AS id) AS s ON journals.id = s.id "
            "WHEN MATCHED THEN UPDATE SET title = 'x'"
        ),
    ],
    ids=[
        "core-delete-annotations",
        "core-delete-journal",
        "text-delete-quoted",
        "text-update-schema-qualified",
        "truncate",
        "insert-or-replace",
        "on-conflict-do-update",
        "merge-update",
    ],
)
def test_rewrites_of_append_only_tables_are_refused(
    engine: sa.Engine, statement: sa.Executable
) -> None:
    with pytest.raises(AppendOnlyViolation), engine.begin() as conn:
        conn.execute(statement)
    assert titles(engine) == {"j1": "first"}
    assert count(engine, "annotations") == 1


def test_exec_driver_sql_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(AppendOnlyViolation, match="DELETE on journals"), engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1; DELETE FROM journals")
    assert titles(engine) == {"j1": "first"}


def test_other_tables_change_as_before(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(schemas.posts).values(status="published"))
        conn.execute(sa.update(schemas.tasks).values(status="processing"))
        conn.execute(sa.delete(schemas.tasks))
    with engine.connect() as conn:
        assert conn.execute(sa.select(schemas.posts.c.status)).scalar_one() == "published"
    assert count(engine, "tasks") == 0


def test_opting_out_lets_a_rewrite_through(engine: sa.Engine) -> None:
    with engine.begin() as conn:  # a statement opts out
        conn.execute(
            UPDATE_JOURNAL.values(title="by statement").execution_options(**{ALLOW_REWRITE: True})
        )
    assert titles(engine) == {"j1": "by statement"}
    with engine.connect() as conn:  # a connection opts out
        conn.execution_options(**{ALLOW_REWRITE: True})
        conn.execute(UPDATE_JOURNAL.values(title="by connection"))
        conn.commit()
    assert titles(engine) == {"j1": "by connection"}
    # the opt-out stays with that connection
    with pytest.raises(AppendOnlyViolation), engine.begin() as conn:
        conn.execute(UPDATE_JOURNAL.values(title="again"))
    assert titles(engine) == {"j1": "by connection"}


def test_an_engine_copy_with_options_keeps_the_guard(engine: sa.Engine) -> None:
    with pytest.raises(AppendOnlyViolation), engine.execution_options(x=1).begin() as conn:
        conn.execute(UPDATE_JOURNAL.values(title="rewritten"))
    with engine.execution_options(**{ALLOW_REWRITE: True}).begin() as conn:
        conn.execute(UPDATE_JOURNAL.values(title="allowed"))
    assert titles(engine) == {"j1": "allowed"}


def test_remove_takes_the_guard_away(engine: sa.Engine) -> None:
    assert has_append_only_guard(engine)
    remove_append_only_guard(engine)
    assert not has_append_only_guard(engine)
    with engine.begin() as conn:
        conn.execute(UPDATE_JOURNAL.values(title="rewritten"))
    assert titles(engine) == {"j1": "rewritten"}
    remove_append_only_guard(engine)  # removing again is a no-op


def test_installing_again_replaces_never_stacks(engine: sa.Engine) -> None:
    listeners = len(engine.dispatch.before_cursor_execute)
    install_append_only_guard(engine)
    assert len(engine.dispatch.before_cursor_execute) == listeners
    # the second install's tables win: posts guarded, journals no longer
    install_append_only_guard(engine, ["posts"])
    with pytest.raises(AppendOnlyViolation, match="UPDATE on posts"), engine.begin() as conn:
        conn.execute(sa.update(schemas.posts).values(title="x"))
    with engine.begin() as conn:
        conn.execute(UPDATE_JOURNAL.values(title="rewritten"))
    # one remove after two installs leaves no guard
    remove_append_only_guard(engine)
    assert len(engine.dispatch.before_cursor_execute) == listeners - 1
    with engine.begin() as conn:
        conn.execute(sa.update(schemas.posts).values(title="y"))
        conn.execute(sa.delete(schemas.journals))
    assert titles(engine) == {}


def test_an_engine_without_the_guard_is_unaffected(engine: sa.Engine, fresh_db: str) -> None:
    other = sa.create_engine(fresh_db)  # the same file, no guard
    try:
        assert not has_append_only_guard(other)
        with other.begin() as conn:
            conn.execute(UPDATE_JOURNAL.values(title="rewritten"))
        assert titles(engine) == {"j1": "rewritten"}
        with pytest.raises(AppendOnlyViolation), engine.begin() as conn:
            conn.execute(sa.delete(schemas.journals))
    finally:
        other.dispose()


def test_a_guard_on_one_connection_covers_that_connection_only(engine: sa.Engine) -> None:
    remove_append_only_guard(engine)
    with engine.connect() as guarded, engine.connect() as free:
        install_append_only_guard(guarded, schemas.metadata)
        assert has_append_only_guard(guarded) and not has_append_only_guard(engine)
        with pytest.raises(AppendOnlyViolation):
            guarded.execute(sa.delete(schemas.journals))
        guarded.rollback()
        free.execute(UPDATE_JOURNAL.values(title="rewritten"))
        free.commit()
        remove_append_only_guard(guarded)
        guarded.execute(sa.delete(schemas.annotations))
        guarded.commit()
    assert titles(engine) == {"j1": "rewritten"}


def test_tables_must_be_names_not_one_string(engine: sa.Engine) -> None:
    with pytest.raises(TypeError):
        install_append_only_guard(engine, "journals")
    assert has_append_only_guard(engine)  # the installed guard is left as it was
