"""Revisions v4h, v4i, v4j: what head changes so that the application keeps working.

- v4h: the keys into posts and profiles are DEFERRABLE INITIALLY DEFERRED
  (checked at COMMIT on PostgreSQL; left out of DuckDB's DDL, checked there).
- v4i: tasks accept 'enrich_url'.
- v4j: the view posts_with_authors gives posts in V3's shape.

Each on both engines, online, as ``--sql``, in a dry run, and back down.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from alembic.util import CommandError

from alembic import command

from .conftest import alembic_cfg, file_sha256, run_cli
from .messy import build_v3

DEFERRED = {
    ("annotations", "fk_annotations_author_id_profiles"),
    ("post_authors", "fk_post_authors_post_id_posts"),
    ("post_authors", "fk_post_authors_profile_id_profiles"),
}


def duckdb_keys(path: Path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'"
        ).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def authors_two_ways(con: duckdb.DuckDBPyConnection) -> tuple[list[object], list[object]]:
    view = con.execute(
        "SELECT id, authors FROM posts_with_authors WHERE authors IS NOT NULL ORDER BY id"
    ).fetchall()
    rows = con.execute(
        "SELECT post_id, list(profile_id ORDER BY position) FROM post_authors "
        "GROUP BY post_id ORDER BY post_id"
    ).fetchall()
    return view, rows


def test_on_duckdb_the_keys_leave_the_ddl_and_come_back_down(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    url = f"duckdb:///{path}"
    build_v3(path, n=300)
    command.upgrade(alembic_cfg(url, on_violation="quarantine"), "v4g")
    assert duckdb_keys(path) == {"annotations", "post_authors"}
    before = file_sha256(path)
    command.upgrade(alembic_cfg(url, dry_run="true"), "head")
    assert file_sha256(path) == before
    command.upgrade(alembic_cfg(url), "head")
    assert duckdb_keys(path) == set()
    command.check(alembic_cfg(url))
    con = duckdb.connect(str(path))
    view, rows = authors_two_ways(con)
    assert view == rows and len(rows) > 100
    columns = [c[0] for c in con.execute("DESCRIBE posts_with_authors").fetchall()]
    assert columns == [
        "id",
        "content",
        "created_at",
        "source_checksum",
        "title",
        "slug",
        "date",
        "summary",
        "authors",
        "tags",
        "status",
    ]  # fmt: skip  (V3's posts, in V3's order)
    con.execute(
        "INSERT INTO tasks VALUES (uuid(), 'enrich_url', 'pending', '{}', now(), NULL, NULL)"
    )
    con.close()


def test_downgrade_on_duckdb_refuses_or_quarantines_what_the_app_wrote(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    url = f"duckdb:///{path}"
    command.upgrade(alembic_cfg(url), "head")
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO tasks VALUES (uuid(), 'enrich_url', 'pending', '{}', now(), NULL, NULL)"
    )
    con.execute("INSERT INTO annotations (id, created_at, author_id) VALUES ('bot', now(), 'x')")
    con.close()
    with pytest.raises(CommandError) as refused:
        command.downgrade(alembic_cfg(url), "v4g")
    assert "chk_tasks_task_type" in str(refused.value)
    assert "fk_annotations_author_id_profiles" in str(refused.value)
    command.downgrade(alembic_cfg(url, on_violation="quarantine"), "v4g")
    assert duckdb_keys(path) == {"annotations", "post_authors"}
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT id FROM annotations_quarantine").fetchall() == [("bot",)]
    assert con.execute("SELECT task_type FROM tasks_quarantine").fetchall() == [("enrich_url",)]
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert ("posts_with_authors",) not in views
    con.close()


def test_on_postgresql_the_keys_are_deferred_and_the_app_upserts(pg_url: str) -> None:
    command.upgrade(alembic_cfg(pg_url), "head")
    command.check(alembic_cfg(pg_url))
    engine = sa.create_engine(pg_url)
    deferral = (
        "SELECT conrelid::regclass::text, conname, condeferrable AND condeferred "
        "FROM pg_constraint WHERE contype = 'f'"
    )
    try:
        with engine.begin() as c:
            assert {(t, n) for t, n, d in c.exec_driver_sql(deferral).all() if d} == DEFERRED
            c.exec_driver_sql(
                "INSERT INTO profiles (id, created_at, title, interests) VALUES "
                "('ana', now(), 'Ana', ARRAY['x']), ('bo', now(), 'Bo', NULL)"
            )
            c.exec_driver_sql(
                "INSERT INTO posts (id, created_at, title, status) "
                "VALUES ('p', now(), 'T', 'draft')"
            )
            c.exec_driver_sql("INSERT INTO post_authors VALUES ('p', 1, 'bo'), ('p', 2, 'ana')")
            c.exec_driver_sql(
                "INSERT INTO tasks VALUES (gen_random_uuid(), 'enrich_url', 'pending', '{}', "
                "now(), NULL, NULL)"
            )
        with engine.begin() as c:  # the cache's DELETE then INSERT, in one transaction
            c.exec_driver_sql("DELETE FROM profiles WHERE id = 'ana'")
            c.exec_driver_sql(
                "INSERT INTO profiles (id, created_at, title, interests) "
                "VALUES ('ana', now(), 'Ana B.', ARRAY['go'])"
            )
        with engine.connect() as c:
            assert c.exec_driver_sql("SELECT id, authors FROM posts_with_authors").all() == [
                ("p", ["bo", "ana"])
            ]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as c:
            c.exec_driver_sql("DELETE FROM profiles WHERE id = 'ana'")
        with engine.begin() as c:
            c.exec_driver_sql("DELETE FROM tasks")
        command.downgrade(alembic_cfg(pg_url), "v4g")
        with engine.connect() as c:
            assert not [d for _, _, d in c.exec_driver_sql(deferral).all() if d]
        command.upgrade(alembic_cfg(pg_url), "head")
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "present", "absent"),
    [
        (
            "duckdb:///offline.duckdb",
            ["CREATE TABLE post_authors", "CREATE VIEW", "'enrich_url'"],
            ["REFERENCES", "DEFERRABLE"],
        ),
        (
            "postgresql+psycopg://u@localhost/db",
            [
                "REFERENCES profiles (id) DEFERRABLE INITIALLY DEFERRED NOT VALID",
                "DROP CONSTRAINT chk_tasks_task_type",
                "VALIDATE CONSTRAINT fk_annotations_author_id_profiles",
                "CREATE VIEW",
            ],
            [],
        ),
    ],
)
def test_offline_scripts(tmp_path: Path, url: str, present: list[str], absent: list[str]) -> None:
    result = run_cli("-x", f"url={url}", "upgrade", "v4g:head", "--sql", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    for text in present:
        assert text in script
    created = [
        statement
        for statement in script.split(";")
        if statement.strip().startswith(("CREATE TABLE post_authors", "CREATE TABLE annotations"))
    ]
    assert created or not absent
    for text in absent:
        assert not [statement for statement in created if text in statement]
    down = run_cli("-x", f"url={url}", "downgrade", "head:v4g", "--sql", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "DROP VIEW" in down.stdout
