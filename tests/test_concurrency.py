"""Readers during an upgrade: each sees the old schema or the new one, never a mix.

DuckDB allows one process to open a file for writing; inside that process,
every connection to the file shares one database instance, and each
transaction reads a snapshot (MVCC), catalog included. A reader whose
transaction began before the upgrade keeps seeing the old schema and rows
until it ends its transaction; a transaction begun after the commit sees the
new schema. (A read_only connection can't share the process with the
upgrade: DuckDB refuses two configurations of one file in a process.)
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from alembic import command

from . import legacy
from .conftest import alembic_cfg

SCHEMA_SQL = (
    "SELECT table_name, column_name, data_type FROM duckdb_columns() "
    "WHERE table_name IN ('posts', 'post_authors') ORDER BY ALL",
    "SELECT table_name, constraint_type FROM duckdb_constraints() "
    "WHERE table_name IN ('posts', 'journals') ORDER BY ALL",
    "SELECT count(*) FROM posts",
)


def _schema(reader: sa.Connection) -> tuple[object, ...]:
    return tuple(tuple(map(tuple, reader.exec_driver_sql(q).fetchall())) for q in SCHEMA_SQL)


def test_readers_see_old_or_new_schema_never_a_mix(db_url: str) -> None:
    # the application's engine: the same configuration as the upgrade's, so
    # both share the process's one DuckDB instance of the file
    engine = sa.create_engine(db_url)
    with engine.begin() as setup:
        for ddl in legacy.TABLES.values():
            setup.exec_driver_sql(ddl)
        setup.exec_driver_sql(
            "INSERT INTO posts (id, title, status, created_at, authors) "
            "SELECT 'p' || i, 't', 'draft', now(), [] FROM range(20000) AS r(i)"
        )
    command.upgrade(alembic_cfg(db_url), "v3")

    early = engine.connect()  # its transaction begins before the upgrade
    old = _schema(early)

    seen: list[tuple[object, ...]] = []
    stop = threading.Event()

    def keep_reading() -> None:  # fresh transactions while the upgrade runs
        with engine.connect() as reader:
            while not stop.is_set():
                seen.append(_schema(reader))
                reader.rollback()

    thread = threading.Thread(target=keep_reading)
    thread.start()
    try:
        command.upgrade(alembic_cfg(db_url), "head")
    finally:
        stop.set()
        thread.join()

    assert _schema(early) == old  # its snapshot did not move
    early.rollback()
    new = _schema(early)
    assert new != old and ("post_authors", "post_id", "VARCHAR") in new[0]
    assert seen and set(seen) <= {old, new}  # never anything in between
    early.close()
    engine.dispose()
