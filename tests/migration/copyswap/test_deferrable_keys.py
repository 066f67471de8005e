"""A rebuild on DuckDB and a deferrable FOREIGN KEY (which DuckDB does not enforce).

The rebuild leaves the key out of the new table's DDL, and judges it even when
the operation does not change it: rows the application wrote since may be
orphans, reported before any change or quarantined.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.util import CommandError

from ...copy_swap_helpers import apply, rows, sql


def children(deferred: bool = True, extra: bool = False) -> sa.Table:
    meta = sa.MetaData()
    sa.Table("parents", meta, sa.Column("id", sa.String(), primary_key=True))
    timing = {"deferrable": True, "initially": "DEFERRED"} if deferred else {}
    return sa.Table(
        "children",
        meta,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("parent_id", sa.String()),
        *([sa.Column("note", sa.String())] if extra else []),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"], name="fk_children_p", **timing),
    )


@pytest.fixture
def file_with_orphans(tmp_path: Path) -> Path:
    path = tmp_path / "k.duckdb"
    sql(
        path,
        "CREATE TABLE parents (id VARCHAR PRIMARY KEY)",
        "CREATE TABLE children (id INTEGER PRIMARY KEY, parent_id VARCHAR)",
        "INSERT INTO parents VALUES ('p')",
        "INSERT INTO children VALUES (1, 'p'), (2, 'gone'), (3, NULL), (4, 'gone')",
    )
    return path


def foreign_keys(path: Path) -> list[tuple[object, ...]]:
    return rows(
        path, "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY'"
    )


def test_an_unchanged_deferrable_key_is_judged_and_left_out(file_with_orphans: Path) -> None:
    path = file_with_orphans
    with pytest.raises(CommandError, match="fk_children_p.*2 rows"):
        apply(path, children(extra=True), previous=children())
    apply(path, children(extra=True), previous=children(), on_violation="quarantine")
    assert rows(path, "SELECT id FROM children ORDER BY id") == [(1,), (3,)]
    assert rows(path, "SELECT id FROM children_quarantine ORDER BY id") == [(2,), (4,)]
    assert foreign_keys(path) == []  # DuckDB does not hold it: deletes and re-inserts pass
    sql(path, "DELETE FROM parents", "INSERT INTO parents VALUES ('p')")
    # made immediate, DuckDB holds it again
    apply(path, children(deferred=False, extra=True), previous=children(extra=True))
    assert foreign_keys(path) == [("children",)]
