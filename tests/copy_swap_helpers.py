"""Running create_copy_swap directly on a DuckDB file, as a revision would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from egregora.database.migration.copyswap.op import CreateCopySwapOp

from .fidelity import catalog_picture, differences


def apply(
    path: Path | str, table: sa.Table, *, context_opts: dict[str, Any] | None = None, **kw: Any
) -> None:
    """``op.create_copy_swap(table, **kw)`` in one transaction on the file (or URL) ``path``.

    On a DuckDB file it also holds the fidelity checker: every object but the
    rebuilt table and the quarantine tables is exactly as it was (the rows of
    referencing tables may go to quarantine, so with quarantine only their
    definitions are compared). A failed operation leaves everything as it was.
    ``context_opts``: the migration context's options, as env.py would set them.
    """
    url = path if isinstance(path, str) else f"duckdb:///{path}"
    checked = isinstance(path, Path) and path.exists()
    before = _picture(path, table.name) if checked else None  # type: ignore[arg-type]
    untouched = _picture(path, None) if checked else None  # type: ignore[arg-type]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection, opts=context_opts or {})
            Operations(context).create_copy_swap(table, **kw)
    except Exception:
        if untouched is not None:
            assert differences(untouched, _picture(path, None)) == []  # type: ignore[arg-type]
        raise
    finally:
        engine.dispose()
    if before is not None:
        after = _picture(path, table.name)  # type: ignore[arg-type]
        if kw.get("on_violation") == "quarantine":
            before.pop("rows"), after.pop("rows"), before.pop("view_results")
            after.pop("view_results")
        assert differences(before, after) == [], f"create_copy_swap {table.name} changed more"


def _picture(path: Path, rebuilt: str | None) -> dict[str, Any]:
    """The catalog but the rebuilt table, its sequences and the quarantine tables."""
    tables = {r[0] for r in rows(path, "SELECT table_name FROM duckdb_tables()")}
    leave_out = {t for t in tables if t.endswith("_quarantine")}
    if rebuilt is None:
        return catalog_picture(path, leave_out)
    picture = catalog_picture(path, leave_out | {rebuilt})
    picture["sequences"] = [s for s in picture["sequences"] if not s[0].startswith(rebuilt)]
    return picture


def invoke(path: Path, operation: CreateCopySwapOp) -> None:
    """Run a prepared operation (a reverse(), say), holding the same fidelity checker."""
    before = _picture(path, operation.table.name)
    untouched = _picture(path, None)
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            Operations(MigrationContext.configure(connection)).invoke(operation)
    except Exception:
        assert differences(untouched, _picture(path, None)) == []
        raise
    finally:
        engine.dispose()
    if operation.on_violation != "quarantine":
        assert differences(before, _picture(path, operation.table.name)) == []


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
