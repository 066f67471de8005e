"""A picture of the schema: a Mermaid ER diagram of the metadata, as Markdown.

Regenerate docs/schema.md after changing schemas.py:

    python -m egregora.database.erd            # writes docs/schema.md
    python -m egregora.database.erd --check    # exits 1 when it is out of date

Code hosts render the ``mermaid`` block as a diagram. Constraints that a
diagram can't show (UNIQUE over several columns, CHECK) are listed per table
below it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sqlalchemy as sa

from egregora.database import schemas
from egregora.database.foreign_keys import deferrable

DEFAULT_PATH = Path("docs/schema.md")

# Mermaid attribute types are single words: spell DuckDB's multi-word types as one.
_TYPE_WORDS = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "VARCHAR[]": "VARCHAR_LIST"}


def render(metadata: sa.MetaData = schemas.metadata) -> str:
    """The whole Markdown document for ``metadata``."""
    from duckdb_sqlalchemy import Dialect

    dialect = Dialect()
    lines = [
        "# The Egregora schema",
        "",
        "Generated from `src/egregora/database/schemas.py` by "
        "`python -m egregora.database.erd`; do not edit by hand.",
        "",
        "```mermaid",
        "erDiagram",
    ]
    tables = sorted(metadata.tables.values(), key=lambda t: t.name)
    for table in tables:
        lines.append(f"    {table.name} {{")
        for column in table.columns:
            lines.append(f"        {_column(column, dialect)}")
        lines.append("    }")
    for table in tables:
        for fk in sorted(table.foreign_key_constraints, key=lambda f: str(f.name)):
            parent = fk.referred_table.name
            columns = ", ".join(c.name for c in fk.columns)
            optional = any(c.nullable for c in fk.columns)
            lines.append(
                f'    {parent} ||--{"o" if optional else "|"}{{ {table.name} : "{columns}"'
            )
    lines += ["```", "", "## Constraints", ""]
    for table in tables:
        lines += [f"### {table.name}", ""]
        lines += [f"- {item}" for item in _constraints(table, dialect)] or ["- (none)"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _column(column: sa.Column[object], dialect: sa.Dialect) -> str:
    type_sql = str(dialect.type_compiler_instance.process(column.type))
    type_word = _TYPE_WORDS.get(type_sql, type_sql.replace(" ", "_"))
    keys = [
        k
        for k, present in (
            ("PK", column.primary_key),
            ("FK", bool(column.foreign_keys)),
            ("UK", _single_unique(column)),
        )
        if present
    ]
    note = ' "NOT NULL"' if not column.nullable and not column.primary_key else ""
    return " ".join([type_word, column.name, ", ".join(keys)]).rstrip() + note


def _single_unique(column: sa.Column[object]) -> bool:
    table = column.table
    return any(
        isinstance(c, sa.UniqueConstraint) and [x.name for x in c.columns] == [column.name]
        for c in table.constraints
    )


def _constraints(table: sa.Table, dialect: sa.Dialect) -> list[str]:
    compiler = dialect.ddl_compiler(dialect, None)  # type: ignore[arg-type]  # a compiler for fragments: no statement (SQLAlchemy's stubs want one)
    items = []
    if table.info.get(schemas.APPEND_ONLY):
        items.append(
            "append-only: rows are inserted, never updated or deleted "
            "(triggers on PostgreSQL, the engine guard on DuckDB)"
        )
    if table.primary_key.columns:
        cols = ", ".join(c.name for c in table.primary_key.columns)
        items.append(f"`{table.primary_key.name}`: PRIMARY KEY ({cols})")
    for constraint in sorted(table.constraints, key=lambda c: str(c.name)):
        if isinstance(constraint, sa.UniqueConstraint):
            cols = ", ".join(c.name for c in constraint.columns)
            items.append(f"`{constraint.name}`: UNIQUE ({cols})")
        elif isinstance(constraint, sa.CheckConstraint):
            text = compiler.sql_compiler.process(
                constraint.sqltext, include_table=False, literal_binds=True
            )
            items.append(f"`{constraint.name}`: CHECK ({text})")
        elif isinstance(constraint, sa.ForeignKeyConstraint):
            cols = ", ".join(c.name for c in constraint.columns)
            refs = ", ".join(e.column.name for e in constraint.elements)
            timing = (
                " DEFERRABLE INITIALLY DEFERRED (checked at COMMIT on PostgreSQL; "
                "on DuckDB by egregora.database.integrity)"
                if deferrable(constraint)
                else ""
            )
            items.append(
                f"`{constraint.name}`: FOREIGN KEY ({cols}) REFERENCES "
                f"{constraint.referred_table.name} ({refs}){timing}"
            )
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the schema's ER diagram as Markdown.")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date: run python -m egregora.database.erd")
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
