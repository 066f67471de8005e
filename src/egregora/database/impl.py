"""Alembic's DuckDB implementation, with the quirks this project met handled in one place.

duckdb-sqlalchemy registers ``DuckDBImpl`` for the ``duckdb`` dialect. This
subclass is defined after it, so Alembic uses it instead (Alembic's
implementation registry keeps the last class defined for a dialect).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from duckdb_sqlalchemy.alembic_impl import DuckDBImpl


class EgregoraDuckDBImpl(DuckDBImpl):
    __dialect__ = "duckdb"

    def compare_server_default(
        self,
        inspector_column: Any,
        metadata_column: Any,
        rendered_metadata_default: Any,
        rendered_inspector_default: Any,
    ) -> bool:
        # Alembic renders a plain string default (server_default="en") bare, as
        # en, while DuckDB reflects it as the literal 'en': without quoting it,
        # every string default reads as changed, and `alembic check` is never
        # clean.
        default = metadata_column.server_default
        if isinstance(default, sa.DefaultClause) and isinstance(default.arg, str):
            rendered_metadata_default = "'" + default.arg.replace("'", "''") + "'"
        return bool(
            super().compare_server_default(
                inspector_column,
                metadata_column,
                rendered_metadata_default,
                rendered_inspector_default,
            )
        )
