"""Where the database is: URL resolution and opening it with clear errors."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import registry
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from egregora.database.migration.duckdb_versions import STORAGE_SETTING, STORAGE_VERSION
from egregora.database.migration.errors import DatabaseUnavailable

DEFAULT_URL = "duckdb:///egregora.duckdb"
URL_ENVIRONMENT_VARIABLE = "EGREGORA_DATABASE_URL"

_WHERE = f"-x url=... or {URL_ENVIRONMENT_VARIABLE}"
#: DuckDB for one instance's file, PostgreSQL for hosted deployments.
SUPPORTED_BACKENDS = ("duckdb", "postgresql")

#: The dialect that serves ``duckdb://`` URLs (module, class): duckdb-sqlalchemy's,
#: with constraint names and generated columns given back to reflection.
DUCKDB_DIALECT = ("egregora.database.migration.reflection", "EgregoraDuckDBDialect")


def register_duckdb_dialect() -> None:
    """Make ``duckdb://`` mean duckdb-sqlalchemy (reflection.py), whatever else is installed.

    duckdb-engine claims the same ``duckdb`` entry point, and SQLAlchemy takes
    the first one it finds, so with both installed the choice would depend on
    install order. An explicit registration wins over entry points. Run when
    this module is imported, which the migration environment (env.py) and
    :func:`create_engine` both do.
    """
    for name in ("duckdb", "duckdb.duckdb_sqlalchemy"):  # duckdb:// and duckdb+duckdb_sqlalchemy://
        registry.register(name, *DUCKDB_DIALECT)


register_duckdb_dialect()


def resolve_url(x_args: Mapping[str, str], environ: Mapping[str, str] | None = None) -> str:
    """``-x url=...`` wins over ``$EGREGORA_DATABASE_URL``, which wins over the default."""
    environ = os.environ if environ is None else environ
    return x_args.get("url") or environ.get(URL_ENVIRONMENT_VARIABLE) or DEFAULT_URL


def parse_url(url: str) -> URL:
    """Parse and check a database URL before anything is opened or created."""
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise DatabaseUnavailable(
            f"The database URL {url!r} is not a valid SQLAlchemy URL ({exc}). "
            f"Give one like {DEFAULT_URL!r} (a DuckDB file) through {_WHERE}."
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseUnavailable(
            f"The database URL {parsed.render_as_string(hide_password=True)!r} is for "
            f"{backend}, but Egregora's schema runs on DuckDB (duckdb:///path/to/file.duckdb) "
            "and PostgreSQL 15+ (postgresql+psycopg://user@host/dbname). Give one of those "
            f"through {_WHERE}."
        )
    if backend == "duckdb":
        _check_duckdb_path(url, parsed.database)
    return parsed


def _check_duckdb_path(url: str, database: str | None) -> None:
    if not database or database == ":memory:" or re.match(r"^\w+:", database):
        return  # in-memory, or an extension's scheme (md:, s3:...): DuckDB decides
    path = Path(database)
    if path.is_dir():
        raise DatabaseUnavailable(
            f"The database URL {url!r} points to the directory {str(path)!r}, not a file. "
            f"Name a DuckDB file (created when missing) through {_WHERE}."
        )
    if not path.parent.is_dir():
        raise DatabaseUnavailable(
            f"The database URL {url!r} points into {str(path.parent)!r}, which does not "
            "exist. Create that directory first, or name a file in an existing one."
        )


def _existing_file(url: URL) -> bool:
    """A DuckDB URL's file already exists (an in-memory database never does)."""
    database = url.database or ""
    return database not in ("", ":memory:") and Path(database).is_file()


def create_engine(url: str) -> sa.Engine:
    """An engine that holds no connection open between uses.

    On DuckDB, a file it creates is written in :data:`STORAGE_VERSION`, which
    every supported DuckDB reads (the URL's own ``?storage_compatibility_version=``
    wins). An existing file keeps its format, so it is opened with no setting
    at all: DuckDB refuses a second connection to a file that this process
    already holds open with other settings ("Can't open a connection to same
    database file with a different configuration"), as an application that
    runs its migrations in-process while its own engine is open does.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "duckdb" or _existing_file(parsed):
        return sa.create_engine(parsed, poolclass=NullPool)
    storage = {"config": {STORAGE_SETTING: STORAGE_VERSION}}
    return sa.create_engine(parsed, poolclass=NullPool, connect_args=storage)
