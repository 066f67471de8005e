"""The engines this project migrates, by dialect name: the one place that chooses.

Importing this module defines (and so registers with Alembic) the project's
impl for each: Alembic then picks it for every migration context of that
dialect. ``engine_for`` answers code that has a connection but no migration
context yet (the environment, before it configures one).
"""

from __future__ import annotations

import sqlalchemy as sa

from egregora.database.migration.catalog import InspectedCatalog
from egregora.database.migration.duckdb.impl import EgregoraDuckDBImpl
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.impl import EgregoraImpl
from egregora.database.migration.postgresql.impl import EgregoraPostgresqlImpl

__all__ = ["ENGINES", "catalog_of", "engine_for", "impl_class", "ours"]

#: The impls, by dialect name.
ENGINES: dict[str, type[EgregoraImpl]] = {
    "duckdb": EgregoraDuckDBImpl,
    "postgresql": EgregoraPostgresqlImpl,
}


def engine_for(dialect_name: str) -> type[EgregoraImpl]:
    """The impl for ``dialect_name``; a clear refusal for any other database."""
    engine = ENGINES.get(dialect_name)
    if engine is None:
        raise unsupported(dialect_name)
    return engine


def impl_class(connection: sa.Connection) -> type[EgregoraImpl]:
    """The impl Alembic will choose for ``connection`` (ours, or the neutral base)."""
    return ENGINES.get(connection.dialect.name, EgregoraImpl)


def catalog_of(connection: sa.Connection) -> InspectedCatalog:
    """The catalog of ``connection``'s database, read the way its impl reads it."""
    return impl_class(connection).catalog(connection)


def ours(impl: object) -> EgregoraImpl:
    """``impl`` (a migration context's), if it is one of ours; a clear refusal if not."""
    if not isinstance(impl, EgregoraImpl):
        dialect = getattr(impl, "dialect", None)
        raise unsupported(str(getattr(dialect, "name", "this database")))
    return impl


def unsupported(dialect_name: str) -> InvalidOperation:
    return InvalidOperation(
        "create_copy_swap runs on DuckDB (a rebuild) and PostgreSQL (ALTER in place), "
        f"not on {dialect_name}. Use Alembic's plain operations there."
    )
