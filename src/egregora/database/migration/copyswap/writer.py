"""Spelling SQL for one dialect: quoting, types, expressions, literals.

Every identifier goes through the dialect's preparer, every literal through
its compiler; nothing here knows which engine runs the plan.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from egregora.database.migration.copyswap.model import ColumnMapValue

__all__ = ["SqlWriter", "literal"]


class SqlWriter:
    """The SQL text of one plan's names, types and expressions, for ``dialect``."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        self.preparer = dialect.identifier_preparer
        self.ddl = dialect.ddl_compiler(dialect, None)  # type: ignore[arg-type]  # a compiler for fragments: no statement (SQLAlchemy's stubs want one)

    def q(self, name: str) -> str:
        return str(self.preparer.quote(name))

    def cols(self, names: Iterable[str], prefix: str = "") -> str:
        return ", ".join(prefix + self.q(n) for n in names)

    def literal(self, value: str) -> str:
        return literal(self.dialect, value)

    def expression_sql(self, value: ColumnMapValue) -> str:
        if isinstance(value, str):
            return value
        return str(self.ddl.sql_compiler.process(value, include_table=False, literal_binds=True))

    def type_sql(self, type_: sa.types.TypeEngine[object]) -> str:
        return str(self.dialect.type_compiler_instance.process(type_))

    def value_type_sql(self, type_: sa.types.TypeEngine[object]) -> str:
        """The type a value is CAST to: a collation is the column's, not the value's
        (``CAST(x AS VARCHAR COLLATE NOCASE)`` is a syntax error on DuckDB)."""
        if isinstance(type_, sa.String) and type_.collation:
            return str(self.dialect.type_compiler_instance.process(sa.String(type_.length)))
        return self.type_sql(type_)

    def known_type_sql(self, type_: sa.types.TypeEngine[object]) -> str | None:
        """A previous column's type as SQL; None when reflection could not name it.

        duckdb-sqlalchemy reflects some DuckDB types (an empty STRUCT, TUPLE)
        as NullType. The target then says what the column is, and the values
        are taken as they are (the target's CREATE TABLE gives the type).
        """
        if isinstance(type_, sa.types.NullType):
            return None
        return self.type_sql(type_)

    def check_sql(self, check: sa.CheckConstraint | sa.Computed) -> str:
        """The SQL of a CHECK's (or a generated column's) expression."""
        return str(
            self.ddl.sql_compiler.process(check.sqltext, include_table=False, literal_binds=True)
        )

    def default_sql(self, column: sa.Column[object]) -> str:
        """A column's server default as SQL (a plain string becomes a literal)."""
        default = column.server_default
        assert isinstance(default, sa.DefaultClause)
        arg = default.arg
        if isinstance(arg, str):
            return self.literal(arg)
        return str(self.ddl.sql_compiler.process(arg, literal_binds=True))

    def comment_sql(self, table: str, column: str | None, text: str) -> str:
        """COMMENT ON TABLE (``column`` None) or COMMENT ON COLUMN."""
        target = (
            f"TABLE {self.q(table)}"
            if column is None
            else (f"COLUMN {self.q(table)}.{self.q(column)}")
        )
        return f"COMMENT ON {target} IS {self.literal(text)}"


def literal(dialect: sa.Dialect, value: str) -> str:
    """``value`` as a string literal of ``dialect``."""
    return str(
        sa.literal(value, sa.String()).compile(
            dialect=dialect, compile_kwargs={"literal_binds": True}
        )
    )
