"""Running create_copy_swap directly on a DuckDB file, as a revision would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from egregora.database.ops import CreateCopySwapOp


def apply(path: Path | str, table: sa.Table, **kw: Any) -> None:
    """``op.create_copy_swap(table, **kw)`` in one transaction on the file (or URL) ``path``."""
    url = path if isinstance(path, str) else f"duckdb:///{path}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            Operations(MigrationContext.configure(connection)).create_copy_swap(table, **kw)
    finally:
        engine.dispose()


def invoke(path: Path, operation: CreateCopySwapOp) -> None:
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            Operations(MigrationContext.configure(connection)).invoke(operation)
    finally:
        engine.dispose()


def sql(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [tuple(r) for r in con.execute(query).fetchall()]
    finally:
        con.close()


def table_names(path: Path) -> set[str]:
    return {r[0] for r in rows(path, "SELECT table_name FROM duckdb_tables()")}


def version(path: Path) -> list[str]:
    """The revisions stamped in ``alembic_version``."""
    return [r[0] for r in rows(path, "SELECT version_num FROM alembic_version")]
