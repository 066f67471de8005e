"""Adoption of V3 files as the field has them: what is taken forward, converted, refused.

The corpus of the application's own files is tests/test_field_files.py; these
are the cases around it a user meets: a conversion asked for (and its
values), a table rebuilt at adoption keeping the rules the later schema
declares, another store's FOREIGN KEY onto a V3 table, and the same on
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest
from alembic.util import CommandError

from alembic import command
from egregora.database.migration.errors import (
    AdoptionRefused,
    ConstraintViolations,
    InvalidOperation,
    MigrationFailed,
)

from .. import legacy
from ..conftest import alembic_cfg, file_sha256
from ..copy_swap_helpers import rows


def _v3(path: Path, *statements: str, change: dict[str, str] | None = None) -> None:
    con = duckdb.connect(str(path))
    for name, ddl in legacy.TABLES.items():
        con.execute((change or {}).get(name, ddl))
    for statement in statements:
        con.execute(statement)
    con.close()


def test_timestamps_without_zone_are_converted_only_when_asked(
    db_path: Path, db_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    _v3(
        db_path,
        "ALTER TABLE annotations ALTER COLUMN created_at TYPE TIMESTAMP",
        "INSERT INTO annotations (id, created_at, parent_type) "
        "VALUES ('a1', TIMESTAMP '2026-01-10 12:00:00', 'post')",
    )
    before = file_sha256(db_path)
    with pytest.raises(AdoptionRefused, match=r"-x naive_timestamps=UTC") as refused:
        command.upgrade(alembic_cfg(db_url), "head")
    assert "annotations.created_at is TIMESTAMP (no time zone)" in str(refused.value)
    assert file_sha256(db_path) == before
    command.upgrade(alembic_cfg(db_url, naive_timestamps="America/Sao_Paulo"), "v3")
    assert rows(db_path, "SELECT typeof(created_at), created_at FROM annotations") == [
        ("TIMESTAMP WITH TIME ZONE", datetime(2026, 1, 10, 15, 0, tzinfo=UTC))
    ]
    capfd.readouterr()
    command.upgrade(alembic_cfg(db_url), "head")  # the option is needed once, to adopt
    command.check(alembic_cfg(db_url))


def test_a_time_zone_nobody_knows_is_refused_before_anything_opens(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    with pytest.raises(InvalidOperation, match="naive_timestamps=Mars/Base is not a time zone"):
        command.upgrade(alembic_cfg(f"duckdb:///{path}", naive_timestamps="Mars/Base"), "head")
    assert not path.exists()


def test_a_table_rebuilt_at_adoption_keeps_the_rules_the_later_schema_declares(
    db_path: Path, db_url: str
) -> None:
    posts = legacy.TABLES["posts"]
    _v3(
        db_path,
        "INSERT INTO posts (id, title, created_at, status) VALUES ('p1', 't', now(), 'draft')",
        "ALTER TABLE posts ADD COLUMN mood VARCHAR",  # holds no value: dropped
        change={
            "posts": posts.replace(
                "CONSTRAINT chk_posts_status CHECK (status IN ('draft', 'published', 'archived'))",
                "PRIMARY KEY (id), CHECK (length(slug) > 3)",
            ).replace("title VARCHAR", "title VARCHAR NOT NULL")
        },
    )
    command.upgrade(alembic_cfg(db_url), "v3")
    (stored,) = rows(db_path, "SELECT sql FROM duckdb_tables() WHERE table_name = 'posts'")[0]
    assert "status IN ('draft', 'published', 'archived')" in stored  # V3's, added
    assert "PRIMARY KEY(id)" in stored and "title VARCHAR NOT NULL" in stored  # kept
    assert "length(slug)" not in stored and "mood" not in stored  # not the schema's
    command.upgrade(alembic_cfg(db_url), "head")
    command.check(alembic_cfg(db_url))
    command.downgrade(alembic_cfg(db_url), "v3")
    reference = duckdb.connect()
    legacy.create(reference, view=False)
    expected = reference.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'posts'")
    assert rows(db_path, "SELECT sql FROM duckdb_tables() WHERE table_name = 'posts'") == [
        expected.fetchone()
    ]


def test_another_store_s_foreign_key_onto_a_v3_table(db_path: Path, db_url: str) -> None:
    _v3(
        db_path,
        "ALTER TABLE annotations ADD PRIMARY KEY (id)",
        "CREATE TABLE annotation_votes (annotation_id VARCHAR REFERENCES annotations (id), "
        "vote INTEGER)",
        "INSERT INTO annotations (id, created_at, parent_type) VALUES ('a1', now(), 'post')",
        "INSERT INTO annotation_votes VALUES ('a1', 1)",
    )
    command.upgrade(alembic_cfg(db_url), "head")
    command.check(alembic_cfg(db_url))
    assert rows(db_path, "SELECT * FROM annotation_votes") == [("a1", 1)]
    before = file_sha256(db_path)
    # V3 has no key for it to reference: refused, rolled back, as adoption said it would be
    with pytest.raises(MigrationFailed, match="no primary key or unique constraint"):
        command.downgrade(alembic_cfg(db_url), "v3")
    assert file_sha256(db_path) == before


# -- PostgreSQL ---------------------------------------------------------------------


def _pg(url: str, *statements: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as con:
        found: list[tuple[Any, ...]] = []
        for statement in statements:
            cursor = con.execute(statement)
            found = cursor.fetchall() if cursor.description else []
        return found


def _pg_field_file(url: str) -> None:
    """A V3 database as an application like Egregora's would have left it, on PostgreSQL."""
    changed = {
        "posts": legacy.TABLES["posts"].replace(
            ",\n  CONSTRAINT chk_posts_status CHECK (status IN ('draft', 'published', 'archived'))",
            "",
        ),
        "tasks": legacy.TABLES["tasks"].replace("'enrich_media')", "'enrich_media', 'enrich_url')"),
    }
    statements = [
        changed.get(name, ddl) for name, ddl in legacy.TABLES.items() if name != "journals"
    ]
    _pg(
        url,
        *statements,
        "ALTER TABLE annotations ADD PRIMARY KEY (id)",
        "CREATE INDEX idx_annotations_parent_created ON annotations (parent_id, parent_type, "
        "created_at)",
        "CREATE TABLE messages (event_id VARCHAR PRIMARY KEY, text VARCHAR)",
        "INSERT INTO messages VALUES ('m1', 'Olá')",
        "INSERT INTO posts (id, title, created_at, status) VALUES "
        "('p1', 't', now(), 'draft'), ('p2', 't', now(), 'Published')",
        "INSERT INTO tasks (task_id, task_type, status, created_at) VALUES "
        "(gen_random_uuid(), 'enrich_url', 'pending', now()), "
        "(gen_random_uuid(), 'generate_banner', 'pending', now())",
    )


def test_on_postgresql_a_field_file_is_adopted_with_its_differences(
    pg_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    _pg_field_file(pg_url)
    capfd.readouterr()
    command.current(alembic_cfg(pg_url))
    said = capfd.readouterr().out
    for words in (
        "journals: the table is missing -> created empty",
        "posts: lacks V3's CHECK",
        "tasks: CHECK (",
        "allows 'enrich_url' beyond V3's",
        "annotations: PRIMARY KEY (id) -> kept",
        "annotations: index idx_annotations_parent_created (parent_id, parent_type, created_at)",
        "left alone: 1 table (messages)",
    ):
        assert words in said, (words, said)
    with pytest.raises(ConstraintViolations) as refused:
        command.upgrade(alembic_cfg(pg_url), "head")
    assert "chk_posts_status on posts" in str(refused.value)
    assert "[revision v3 upgrade]" in str(refused.value)
    assert _pg(pg_url, "SELECT to_regclass('alembic_version'), to_regclass('journals')") == [
        (None, None)
    ]
    command.upgrade(alembic_cfg(pg_url, on_violation="quarantine"), "head")
    assert _pg(pg_url, "SELECT id FROM posts_quarantine") == [("p2",)]
    assert _pg(pg_url, "SELECT task_type FROM tasks_quarantine") == [("enrich_url",)]
    command.check(alembic_cfg(pg_url))
    command.downgrade(alembic_cfg(pg_url), "v3")
    command.upgrade(alembic_cfg(pg_url), "head")
    command.check(alembic_cfg(pg_url))
    assert _pg(pg_url, "SELECT * FROM messages") == [("m1", "Olá")]
    assert version_pg(pg_url)


def test_on_postgresql_timestamps_without_zone_are_converted_only_when_asked(pg_url: str) -> None:
    _pg(
        pg_url,
        *legacy.TABLES.values(),
        "ALTER TABLE journals ALTER COLUMN window_start TYPE TIMESTAMP WITHOUT TIME ZONE",
        "INSERT INTO journals (id, created_at, window_start) "
        "VALUES ('j1', now(), TIMESTAMP '2026-01-10 12:00:00')",
    )
    with pytest.raises(CommandError, match="journals.window_start is TIMESTAMP WITHOUT TIME ZONE"):
        command.upgrade(alembic_cfg(pg_url), "head")
    command.upgrade(alembic_cfg(pg_url, naive_timestamps="UTC"), "head")
    assert _pg(
        pg_url, "SELECT window_start = TIMESTAMPTZ '2026-01-10 12:00:00+00' FROM journals"
    ) == [(True,)]
    command.check(alembic_cfg(pg_url))


def version_pg(url: str) -> bool:
    return bool(_pg(url, "SELECT version_num FROM alembic_version"))


def test_alembic_current_on_an_empty_database(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    command.current(alembic_cfg(f"duckdb:///{tmp_path / 'new.duckdb'}"))
    assert "this database is empty. `alembic upgrade head` will create" in capfd.readouterr().out
