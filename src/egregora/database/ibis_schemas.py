"""The schema's tables as ibis sees them: ``ibis.Schema`` from the metadata, and opening them.

Optional (``pip install 'egregora-schema[ibis]'``): this is the one module of
the package that imports ibis, so an application that never imports it
never loads ibis. For an application that queries through ibis, in place of
declaring the tables a second time::

    from egregora.database.ibis_schemas import SCHEMAS, open_table
    from egregora.database.schemas import ALLOWED_VALUES

    posts = open_table(con, "posts")          # an ibis table, checked against head
    con.insert("posts", ibis.memtable(rows, schema=SCHEMAS["posts"]))
    ALLOWED_VALUES["tasks"]["task_type"]       # the CHECK's values, as data

Each schema is what ibis reads from a database at head, DuckDB or PostgreSQL
(``tests/test_ibis_schemas.py`` compares them, every table): types from the
Core column types, nullability from ``nullable``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import ibis
import ibis.expr.datatypes as dt
import sqlalchemy as sa
from ibis.common.exceptions import TableNotFound

from egregora.database import schemas

#: Core types whose DDL means one type on DuckDB and PostgreSQL, and the ibis type
#: both read back. Subclasses first: BigInteger is an Integer, Double a Float.
_SCALARS: Final[tuple[tuple[type[Any], Callable[[Any, bool], dt.DataType]], ...]] = (
    (sa.Uuid, lambda t, n: dt.UUID(nullable=n)),
    (sa.JSON, lambda t, n: dt.JSON(nullable=n)),
    (sa.Boolean, lambda t, n: dt.Boolean(nullable=n)),
    (sa.BigInteger, lambda t, n: dt.Int64(nullable=n)),
    (sa.SmallInteger, lambda t, n: dt.Int16(nullable=n)),
    (sa.Integer, lambda t, n: dt.Int32(nullable=n)),
    (sa.Double, lambda t, n: dt.Float64(nullable=n)),
    (sa.DateTime, lambda t, n: dt.Timestamp("UTC" if t.timezone else None, 6, nullable=n)),
    (sa.Date, lambda t, n: dt.Date(nullable=n)),
    (sa.Time, lambda t, n: dt.Time(nullable=n)),
    (sa.String, lambda t, n: dt.String(nullable=n)),
    (sa.LargeBinary, lambda t, n: dt.Binary(nullable=n)),
)


def ibis_type(type_: sa.types.TypeEngine[Any], nullable: bool = True) -> dt.DataType:
    """The ibis type a database at head gives a column of Core type ``type_``."""
    if isinstance(type_, sa.ARRAY):
        return dt.Array(ibis_type(type_.item_type), nullable=nullable)
    if isinstance(type_, sa.Numeric) and not isinstance(type_, sa.Float) and type_.precision:
        return dt.Decimal(type_.precision, type_.scale or 0, nullable=nullable)
    # VARCHAR(n): DuckDB drops the length and ibis reads string; PostgreSQL keeps it
    # and ibis reads string(n). One schema can't match both, so no length here (an
    # Enum's length is SQLAlchemy's own: ibis reads it as string on both).
    length = getattr(type_, "length", None) if not isinstance(type_, sa.Enum) else None
    if length is None:
        for kind, make in _SCALARS:
            if isinstance(type_, kind):
                return make(type_, nullable)
    raise TypeError(
        f"{type_!r} has no ibis type here: DuckDB and PostgreSQL read it differently "
        "(a FLOAT is 4 bytes on one and 8 on the other, a VARCHAR keeps its length on "
        "one only), or it was never measured. Use a type both read alike (Double, String "
        "without a length), or map it in egregora.database.ibis_schemas._SCALARS with a "
        "test that reads it back from both engines."
    )


def ibis_schema(table: sa.Table) -> ibis.Schema:
    """``table`` as an ``ibis.Schema``: its columns, in order, with types and nullability."""
    return ibis.schema({c.name: ibis_type(c.type, bool(c.nullable)) for c in table.columns})


#: Every table of the schema, by name, as an ``ibis.Schema``.
SCHEMAS: Final[Mapping[str, ibis.Schema]] = {
    table.name: ibis_schema(table) for table in schemas.metadata.sorted_tables
}


class NotAtHead(Exception):  # noqa: N818  (a state, as the application reads it)
    """A table is missing, or its columns are not those of this package's head."""


def open_table(con: Any, name: str) -> Any:
    """Table ``name`` on the ibis connection ``con``, once its columns are checked.

    Raises :class:`NotAtHead`, naming each difference and the revision the
    database records, when the table is missing or its columns or their
    types are not those of this package's schema (:data:`SCHEMAS`).
    """
    expected = SCHEMAS[name]
    try:
        table = con.table(name)
    except TableNotFound:
        raise NotAtHead(_not_at_head(con, name, [f"there is no table {name}"])) from None
    differences = _differences(expected, table.schema())
    if differences:
        raise NotAtHead(_not_at_head(con, name, differences))
    return table


def _differences(expected: ibis.Schema, found: ibis.Schema) -> list[str]:
    said = [f"column {c} is missing" for c in expected.names if c not in found]
    said += [f"column {c} is not in the schema" for c in found.names if c not in expected]
    said += [
        f"column {c} is {found[c]}, not {expected[c]}"
        for c in expected.names
        if c in found and found[c] != expected[c]
    ]
    return said


def _not_at_head(con: Any, name: str, differences: list[str]) -> str:
    return (
        f"The database is not at egregora-schema's head for table {name}: "
        f"{'; '.join(differences)}. {_recorded_revision(con)} Upgrade it with "
        "`alembic upgrade head` (the database's owner runs it; see the README), or use "
        "the egregora-schema version the database was last upgraded with."
    )


def _recorded_revision(con: Any) -> str:
    """What the database's ``alembic_version`` says, as a sentence."""
    try:
        column = con.table("alembic_version").version_num
        revisions = sorted(str(v) for v in column.to_pyarrow().to_pylist())
    except TableNotFound:
        return "It has no alembic_version table (a pre-Alembic V3 file, or not Egregora's)."
    if not revisions:
        return "Its alembic_version table is empty."
    return f"It records revision {', '.join(revisions)}."


__all__ = ["SCHEMAS", "NotAtHead", "ibis_schema", "ibis_type", "open_table"]
