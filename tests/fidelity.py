"""A fidelity checker: what DuckDB's own catalog says about everything an operation must keep.

``catalog_picture(path, leave_out)`` reads, for every object but those in
``leave_out`` (the table an operation means to change): each table's stored
DDL text, column types, collations, defaults and generation expressions,
constraints, index DDL, comments, sequences and their last values, enum
types, views' definitions and results, macros, and every row's hash. Two
pictures taken before and after an operation must be equal. The record of
constraint names is left out: a rebuild rewrites its table's entries
(tests/migration/test_namerecord.py holds what they say).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from egregora.database.migration.namerecord import RECORD_TABLE


def catalog_picture(path: Path, leave_out: Iterable[str] = ()) -> dict[str, Any]:
    skip = {*leave_out, RECORD_TABLE}
    con = duckdb.connect(str(path), read_only=True)
    try:
        return _picture(con, skip)
    finally:
        con.close()


def _picture(con: duckdb.DuckDBPyConnection, skip: set[str]) -> dict[str, Any]:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in con.execute(sql).fetchall()]

    tables = [
        (name, sql, comment)
        for name, sql, comment in rows(
            "SELECT table_name, sql, comment FROM duckdb_tables() WHERE NOT internal ORDER BY 1"
        )
        if name not in skip
    ]
    picture: dict[str, Any] = {"tables": tables}
    picture["columns"] = [
        r
        for r in rows(
            "SELECT table_name, column_name, column_index, data_type, column_default, "
            "is_nullable, comment FROM duckdb_columns() WHERE NOT internal ORDER BY 1, 3"
        )
        if r[0] not in skip
    ]
    picture["constraints"] = [
        r
        for r in rows(
            "SELECT table_name, constraint_type, constraint_text, expression FROM "
            "duckdb_constraints() ORDER BY ALL"
        )
        if r[0] not in skip
    ]
    picture["indexes"] = [
        r
        for r in rows("SELECT table_name, index_name, sql FROM duckdb_indexes() ORDER BY 1, 2")
        if r[0] not in skip
    ]
    picture["sequences"] = rows(
        "SELECT sequence_name, start_value, increment_by, last_value FROM duckdb_sequences() "
        "ORDER BY 1"
    )
    picture["types"] = rows(
        "SELECT type_name, logical_type, labels FROM duckdb_types() WHERE NOT internal "
        "AND database_name = current_database() ORDER BY 1"
    )
    picture["macros"] = rows(
        "SELECT function_name, parameters, macro_definition FROM duckdb_functions() "
        "WHERE function_type IN ('macro', 'table_macro') AND NOT internal ORDER BY 1"
    )
    views = rows("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1")
    picture["views"] = views
    picture["view_results"] = {
        name: sorted(map(repr, con.execute(f"SELECT * FROM {_q(name)}").fetchall()))
        for name, _ in views
    }
    picture["rows"] = {
        name: con.execute(
            f"SELECT count(*), coalesce(bit_xor(hash(t)), 0)::VARCHAR FROM {_q(name)} AS t"
        ).fetchone()
        for name, _, _ in tables
    }
    return picture


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed, one line per aspect: empty when the picture is the same."""
    return [
        f"{aspect}: {before[aspect]!r} -> {after.get(aspect)!r}"
        for aspect in before
        if before[aspect] != after.get(aspect)
    ]
