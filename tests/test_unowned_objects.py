"""Objects the schema does not own: Egregora's other stores, a user's views and macros.

A real Egregora file holds more than the V3 tables. Adoption verifies the V3
tables exactly and leaves the rest alone; `alembic check` and autogenerate
never propose to drop them; upgrade, downgrade to v3 and upgrade again leave
them byte-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.util import CommandError

from alembic import command
from egregora.database.migration.errors import AdoptionRefused

from . import legacy
from .conftest import alembic_cfg, run_cli
from .copy_swap_helpers import sql
from .fidelity import catalog_picture
from .messy import build_v3

EXTRAS = (
    "CREATE TABLE messages (id VARCHAR PRIMARY KEY, chat VARCHAR, body VARCHAR, "
    "sent_at TIMESTAMP_NS)",
    "CREATE UNIQUE INDEX ux_messages_chat_sent ON messages (chat, sent_at)",
    "CREATE INDEX ix_messages_body ON messages (lower(body))",
    "CREATE SEQUENCE elo_games START 100",
    "CREATE TABLE elo_ratings (post_id VARCHAR PRIMARY KEY, rating DOUBLE DEFAULT 1500, "
    "games INTEGER DEFAULT 0, n BIGINT DEFAULT nextval('elo_games'))",
    "CREATE TABLE cache_entries (key VARCHAR COLLATE NOCASE, value JSON)",
    "CREATE VIEW chat_sizes AS SELECT chat, count(*) AS n FROM messages GROUP BY chat",
    "CREATE VIEW titled AS SELECT id, title FROM posts",
    "CREATE MACRO rating_of(pid) AS (SELECT rating FROM elo_ratings WHERE post_id = pid)",
    "INSERT INTO messages VALUES ('m1', 'c1', 'Hello', '2024-01-01 10:00:00.000000001'), "
    "('m2', 'c1', 'again', '2024-01-01 10:00:01'), ('m3', 'c2', NULL, NULL)",
    "INSERT INTO elo_ratings (post_id) VALUES ('p1'), ('p2')",
    "INSERT INTO elo_ratings VALUES ('p3', 1612.5, 7, 1)",
    "INSERT INTO cache_entries VALUES ('K', '{\"a\": 1}'), ('k2', NULL)",
)
EXTRA_TABLES = {"messages", "elo_ratings", "cache_entries"}
EXTRA_VIEWS = {"chat_sizes", "titled"}


def extras_picture(path: Path) -> dict[str, Any]:
    """The catalog's picture of the extras only: what must never change."""
    picture = catalog_picture(path)
    owned = {name for name, _, _ in picture["tables"]} - EXTRA_TABLES
    # and the schema's own view (v4j), which comes and goes with the revisions
    picture = catalog_picture(path, leave_out=owned | {"posts_with_authors"})
    picture["views"] = [v for v in picture["views"] if v[0] in EXTRA_VIEWS]
    picture["view_results"] = {"chat_sizes": picture["view_results"]["chat_sizes"]}
    return picture


@pytest.fixture
def v3_with_extras(tmp_path: Path) -> Path:
    path = tmp_path / "egregora.duckdb"
    build_v3(path, n=200)
    sql(path, *EXTRAS)
    return path


def test_upgrade_down_and_up_again_leave_the_extras_exactly_as_they_were(
    v3_with_extras: Path,
) -> None:
    path = v3_with_extras
    url = f"duckdb:///{path}"
    before = extras_picture(path)
    command.upgrade(alembic_cfg(url, on_violation="quarantine"), "head")
    assert extras_picture(path) == before
    command.check(alembic_cfg(url))  # the extras are no drift
    command.downgrade(alembic_cfg(url), "v3")
    assert extras_picture(path) == before
    command.upgrade(alembic_cfg(url, on_violation="quarantine"), "head")
    assert extras_picture(path) == before
    assert sql_rows(path, "SELECT rating_of('p3')") == [(1612.5,)]


def test_adoption_names_what_it_left_alone(v3_with_extras: Path, tmp_path: Path) -> None:
    result = run_cli(
        "-x",
        f"url=duckdb:///{v3_with_extras}",
        "-x",
        "on_violation=quarantine",
        "upgrade",
        "head",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "left alone" in line]
    assert len(lines) == 1, result.stderr
    assert (
        "left alone 3 tables (cache_entries, elo_ratings, messages), 2 views "
        "(chat_sizes, titled), 1 macro (rating_of), 1 sequence (elo_games)" in lines[0]
    )


def test_a_changed_v3_table_beside_extras_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "egregora.duckdb"
    import duckdb

    con = duckdb.connect(str(path))
    legacy.create(con)
    con.execute("ALTER TABLE journals ADD COLUMN mood VARCHAR")
    con.execute("INSERT INTO journals (id, mood) VALUES ('j1', 'calm')")
    con.close()
    sql(path, *EXTRAS[:3])
    before = catalog_picture(path)
    with pytest.raises(AdoptionRefused) as refused:
        command.upgrade(alembic_cfg(f"duckdb:///{path}"), "head")
    message = str(refused.value)
    assert "journals.mood holds 1 values" in message
    assert "messages" not in message  # the extras are not the problem
    assert catalog_picture(path) == before


def test_a_file_without_any_v3_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    sql(path, *EXTRAS[:3])
    with pytest.raises(CommandError, match="none of V3's tables"):
        command.upgrade(alembic_cfg(f"duckdb:///{path}"), "head")


def test_check_and_autogenerate_ignore_tables_the_metadata_does_not_declare(
    tmp_path: Path,
) -> None:
    path = tmp_path / "egregora.duckdb"
    url = f"duckdb:///{path}"
    command.upgrade(alembic_cfg(url), "head")
    sql(path, *EXTRAS[:3], "CREATE TABLE posts_quarantine (id VARCHAR)")
    command.check(alembic_cfg(url))  # raises AutogenerateDiffsDetected on any drift


def test_on_postgresql_adoption_and_check_leave_extras_alone(pg_url: str) -> None:
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        legacy.create(raw)
        for statement in (
            "CREATE TABLE messages (id VARCHAR PRIMARY KEY, chat VARCHAR, body VARCHAR)",
            "CREATE INDEX ix_messages_chat ON messages (chat)",
            "CREATE VIEW chat_sizes AS SELECT chat, count(*) AS n FROM messages GROUP BY chat",
            "INSERT INTO messages VALUES ('m1', 'c1', 'hi'), ('m2', 'c1', NULL)",
        ):
            connection.exec_driver_sql(statement)

    def extras() -> list[Any]:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            return [
                inspector.get_columns("messages"),
                inspector.get_indexes("messages"),
                connection.exec_driver_sql("SELECT * FROM chat_sizes").fetchall(),
                connection.exec_driver_sql("SELECT * FROM messages ORDER BY id").fetchall(),
            ]

    before = extras()
    command.upgrade(alembic_cfg(pg_url), "head")
    command.check(alembic_cfg(pg_url))
    command.downgrade(alembic_cfg(pg_url), "v3")
    command.upgrade(alembic_cfg(pg_url), "head")
    assert [repr(x) for x in extras()] == [repr(x) for x in before]
    engine.dispose()


def sql_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    from .copy_swap_helpers import rows

    return rows(path, query)
