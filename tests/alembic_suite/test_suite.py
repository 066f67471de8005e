"""Alembic's dialect suite, run against the project's impls on DuckDB and PostgreSQL.

conftest.py sets up SQLAlchemy's testing plugin for this directory;
requirements.py says what each engine supports. Each class runs once per
engine. The autogenerate classes compare with the project's comparators too,
as ``alembic/env.py`` configures them (``AUTOGENERATE_PLUGINS``).
"""

from __future__ import annotations

from typing import Any

from alembic.migration import MigrationContext
from alembic.testing import config
from alembic.testing.suite import test_autogen_comments as comments
from alembic.testing.suite import test_autogen_computed as computed
from alembic.testing.suite import test_autogen_diffs as diffs
from alembic.testing.suite import test_autogen_fks as fks
from alembic.testing.suite import test_autogen_identity as identity
from alembic.testing.suite.test_environment import MigrationTransactionTest  # noqa: F401
from alembic.testing.suite.test_op import BackendAlterColumnTest  # noqa: F401
from sqlalchemy.testing.fixtures import TestBase

from egregora.database.migration.autogenerate.compare import AUTOGENERATE_PLUGINS
from egregora.database.migration.dialects import ENGINES
from egregora.database.migration.reflection import EgregoraDuckDBDialect


class ProjectImplTest(TestBase):
    """Not Alembic's: that the suite's migration contexts run the project's code."""

    __backend__ = True

    def test_the_suite_runs_the_project_impl(self) -> None:
        with config.db.connect() as connection:
            impl = MigrationContext.configure(connection).impl
        assert type(impl) in ENGINES.values(), type(impl)
        if config.db.url.get_backend_name() == "duckdb":
            assert isinstance(config.db.dialect, EgregoraDuckDBDialect), config.db.dialect


class ProjectAutogenerate:
    """The suite's autogenerate fixture, with the project's comparators added."""

    def _fixture(
        self,
        m1: Any,
        m2: Any,
        include_schemas: bool = False,
        opts: Any = None,
        *args: Any,
        **kw: Any,
    ) -> Any:
        opts = {"autogenerate_plugins": AUTOGENERATE_PLUGINS, **(opts or {})}
        return super()._fixture(m1, m2, include_schemas, opts, *args, **kw)  # type: ignore[misc]


class AutogenerateCommentsTest(ProjectAutogenerate, comments.AutogenerateCommentsTest):
    pass


class AutogenerateEmptyCommentsTest(ProjectAutogenerate, comments.AutogenerateEmptyCommentsTest):
    pass


class AutogenerateComputedTest(ProjectAutogenerate, computed.AutogenerateComputedTest):
    pass


class AlterColumnTest(ProjectAutogenerate, diffs.AlterColumnTest):
    pass


class AutoincrementTest(ProjectAutogenerate, diffs.AutoincrementTest):
    pass


class AutogenerateForeignKeysTest(ProjectAutogenerate, fks.AutogenerateForeignKeysTest):
    pass


class IncludeHooksTest(ProjectAutogenerate, fks.IncludeHooksTest):
    pass


class AutogenerateFKOptionsTest(ProjectAutogenerate, fks.AutogenerateFKOptionsTest):
    # these two create a FOREIGN KEY with CASCADE, and say nothing of it
    @config.requirements.fk_cascade
    def test_nochange_ondelete(self) -> None:
        super().test_nochange_ondelete()

    @config.requirements.fk_cascade
    @config.requirements.fk_onupdate
    def test_nochange_onupdate(self) -> None:
        super().test_nochange_onupdate()


class AutogenerateIdentityTest(ProjectAutogenerate, identity.AutogenerateIdentityTest):
    pass
