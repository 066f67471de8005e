"""What each engine supports, for Alembic's dialect suite (tests/alembic_suite).

Alembic's :class:`~alembic.testing.requirements.SuiteRequirements` closes what
most databases lack; this class opens what DuckDB and PostgreSQL have, and
skips on DuckDB what DuckDB can't hold, with DuckDB's own words (measured on
DuckDB 2.0.1 and 1.4.3; docs/alembic-suite.md lists them).
"""

from __future__ import annotations

from alembic.testing.requirements import SuiteRequirements
from sqlalchemy.testing import exclusions
from sqlalchemy.testing.exclusions import compound

__all__ = ["Requirements"]

#: DuckDB's words for what it can't hold (docs/alembic-suite.md says more)
NO_CASCADE = (
    "DuckDB: 'Parser Error: FOREIGN KEY constraints cannot use CASCADE, SET NULL or "
    "SET DEFAULT' (docs/alembic-suite.md)"
)
NO_ACTIONS_STORED = (
    "DuckDB stores no FOREIGN KEY action: CASCADE, SET NULL, SET DEFAULT are a Parser "
    "Error, RESTRICT and NO ACTION are forgotten (docs/alembic-suite.md)"
)
NO_DEFERRABLE = (
    "DuckDB: 'Parser Error: syntax error at or near \"deferrable\"'; the project leaves "
    "such a key out of DuckDB's DDL (docs/alembic-suite.md)"
)
NO_IDENTITY = "DuckDB: 'Parser Error: syntax error at or near \"identity\"' (docs/alembic-suite.md)"


def not_on_duckdb(reason: str) -> compound:
    return exclusions.skip_if("duckdb", reason)


class Requirements(SuiteRequirements):
    """Alembic's defaults, then each engine's answers."""

    # -- both engines -------------------------------------------------------------

    @property
    def computed_columns(self) -> compound:
        # DuckDB's are VIRTUAL, PostgreSQL's STORED; reflection.py gives DuckDB's
        # back as sa.Computed
        return exclusions.open()

    @property
    def autocommit_isolation(self) -> compound:
        return exclusions.open()

    @property
    def autoincrement_on_composite_pk(self) -> compound:
        # a sequence default on DuckDB, SERIAL on PostgreSQL
        return exclusions.open()

    # -- PostgreSQL only: DuckDB's limits -----------------------------------------

    @property
    def identity_columns(self) -> compound:
        return not_on_duckdb(NO_IDENTITY)

    @property
    def identity_columns_alter(self) -> compound:
        return not_on_duckdb(NO_IDENTITY)

    @property
    def fk_ondelete_is_reflected(self) -> compound:
        return not_on_duckdb(NO_ACTIONS_STORED)

    @property
    def fk_onupdate_is_reflected(self) -> compound:
        return not_on_duckdb(NO_ACTIONS_STORED)

    @property
    def fk_cascade(self) -> compound:
        """ON DELETE / ON UPDATE CASCADE (test_suite.py marks the suite's tests that need it)."""
        return not_on_duckdb(NO_CASCADE)

    @property
    def fk_deferrable(self) -> compound:
        return not_on_duckdb(NO_DEFERRABLE)

    @property
    def fk_initially(self) -> compound:
        return not_on_duckdb(NO_DEFERRABLE)

    @property
    def fk_deferrable_is_reflected(self) -> compound:
        return not_on_duckdb(NO_DEFERRABLE)
