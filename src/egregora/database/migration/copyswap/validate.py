"""Refusing create-copy-swap arguments that can't work, before anything is planned or run.

Every engine's own limits are its planner's (``check_limits``); what is
checked here holds on every engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from egregora.database.migration.copyswap.model import ON_VIOLATION_CHOICES, ColumnMapValue
from egregora.database.migration.definitions import referred_columns, referred_table
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.sequences import implicit_sequence
from egregora.database.migration.sqltext import statement_outside_quotes

__all__ = ["check_on_violation", "validate"]


def validate(
    previous: sa.Table,
    target: sa.Table,
    column_map: Mapping[str, ColumnMapValue],
    dependents: Sequence[sa.Table],
) -> None:
    """Refuse arguments that can't work on any engine (``on_violation``: check_on_violation)."""
    _check_tables(previous, target, dependents)
    _check_column_map(target, column_map)
    _check_filled(previous, target, column_map)
    _check_references(target, dependents)


def check_on_violation(on_violation: str) -> None:
    if on_violation not in ON_VIOLATION_CHOICES:
        raise InvalidOperation(
            f"create_copy_swap: on_violation={on_violation!r} is not one of "
            f"{', '.join(ON_VIOLATION_CHOICES)}. Use 'fail' to stop on rows that violate "
            "the new constraints, or 'quarantine' to move them to <table>_quarantine."
        )


def _check_tables(previous: sa.Table, target: sa.Table, dependents: Sequence[sa.Table]) -> None:
    for table in (previous, target, *dependents):
        if table.schema is not None:
            raise InvalidOperation(
                f"create_copy_swap works on tables of the connection's current schema, but "
                f"{table.name} is given schema={table.schema!r}. Nothing was changed. Run the "
                f"migration with that schema as the current one (DuckDB: SET schema = "
                f"'{table.schema}'; PostgreSQL: search_path), and leave schema= out."
            )
    if previous.name != target.name:
        raise InvalidOperation(
            f"create_copy_swap rebuilds one table under its own name, but the previous "
            f"definition is {previous.name!r} and the target {target.name!r}. Rename the "
            "table with op.rename_table in a step of its own."
        )


def _check_column_map(target: sa.Table, column_map: Mapping[str, ColumnMapValue]) -> None:
    unknown = sorted(set(column_map) - set(target.columns.keys()))
    if unknown:
        raise InvalidOperation(
            f"create_copy_swap on {target.name}: column_map names {', '.join(unknown)}, "
            f"which the target definition does not have (it has "
            f"{', '.join(target.columns.keys())}). Keys are target columns; values are SQL "
            "expressions over the old row."
        )
    for key, expression in column_map.items():
        if isinstance(expression, sa.ColumnElement):
            continue
        if not isinstance(expression, str) or not expression.strip():
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: column_map[{key!r}] must be a "
                "non-empty SQL expression over the old row, such as 'old_name' or "
                "'CAST(old_name AS UUID)'."
            )
        if statement_outside_quotes(expression):
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: column_map[{key!r}] = "
                f"{expression!r} contains a ';'. It must be one SQL expression, not "
                "statements."
            )


def _check_filled(
    previous: sa.Table, target: sa.Table, column_map: Mapping[str, ColumnMapValue]
) -> None:
    """Every NOT NULL column of the target gets a value for the rows already there."""
    old_columns = set(previous.columns.keys())
    for column in target.columns:
        filled = (
            column.name in column_map
            or column.name in old_columns
            or column.server_default is not None
            or implicit_sequence(column)
            or column.computed is not None
        )
        if not filled and not column.nullable:
            raise InvalidOperation(
                f"create_copy_swap on {target.name}: the new column {column.name} is NOT "
                "NULL but has no server default, no column of the same name in the old "
                f"table, and no column_map entry, so its rows can't be filled. Add "
                f"column_map={{{column.name!r}: '<SQL over the old row>'}} or a "
                "server_default."
            )


def _check_references(target: sa.Table, dependents: Sequence[sa.Table]) -> None:
    """Every referencing table still finds the columns it references."""
    target_columns = set(target.columns.keys())
    for dependent in dependents:
        for fk in dependent.foreign_key_constraints:
            if referred_table(fk) != target.name:
                continue
            missing = [c for c in referred_columns(fk) if c not in target_columns]
            if missing:
                raise InvalidOperation(
                    f"create_copy_swap on {target.name}: {dependent.name} references "
                    f"{target.name}({', '.join(missing)}), which the new definition no "
                    f"longer has. Rebuild {dependent.name} first, in the same revision, to "
                    "reference the new columns."
                )
