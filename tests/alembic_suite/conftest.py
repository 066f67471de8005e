"""Alembic's dialect suite (``alembic.testing.suite``) on this project's impls, in the normal run.

Alembic's suite is written for SQLAlchemy's testing plugin, which a third-party
dialect usually loads for its whole run (``from sqlalchemy.testing.plugin.pytestplugin
import *`` in a root conftest, the URL from ``--dburi``, the requirements class from
``setup.cfg``). Loaded for the whole run here it would take over collection (it
drops every test that is not in a class, and makes SAWarnings errors), so this
conftest sets the plugin up itself, when this directory is collected, and hands
it only the items of this directory:

- the databases: a DuckDB file in a temporary directory (``duckdb://``, served by
  the project's dialect, ``reflection.EgregoraDuckDBDialect``), and a database on
  the session's test PostgreSQL server (``tests/pg_server.shared``; without the
  server binaries the PostgreSQL half is left out, saying so once);
- the requirements class: :class:`tests.alembic_suite.requirements.Requirements`;
- the markers it puts on classes: in pyproject.toml (the run has --strict-markers);
- the plugin's collection and per-test hooks, for this directory's items only
  (pytest asks a conftest's collection and run hooks for its own directory; the
  one hook it asks for every item, ``pytest_collection_modifyitems``, is given
  this directory's share); its warning filters, around this directory's tests.

Each suite class runs once per database (SQLAlchemy's ``__backend__`` classes:
``AlterColumnTest_duckdb``, ``AlterColumnTest_postgresql_psycopg``). The
migration contexts get the project's impls (``EgregoraDuckDBImpl``,
``EgregoraPostgresqlImpl``: importing ``egregora.database.migrations`` registers
them) and, in test_suite.py, the project's autogenerate comparators.
"""

from __future__ import annotations

import argparse
import atexit
import configparser
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb_sqlalchemy.provision  # noqa: F401  (creates test_schema on the DuckDB file)
import pytest
from sqlalchemy.testing import config as testing_config
from sqlalchemy.testing.plugin import plugin_base, pytestplugin

import egregora.database.migration.config  # noqa: F401  (duckdb:// is the project's dialect)
import egregora.database.migrations  # noqa: F401  (the project's Alembic impls)
from tests import pg_server

HERE = Path(__file__).resolve().parent
REQUIREMENTS = "tests.alembic_suite.requirements:Requirements"


def _duckdb_url() -> str:
    folder = tempfile.mkdtemp(prefix="egregora-alembic-suite-")
    atexit.register(shutil.rmtree, folder, True)
    return f"duckdb:///{Path(folder) / 'suite.duckdb'}"


def _postgresql_url() -> str | None:
    try:
        server = pg_server.shared()
    except pg_server.NoServer as exc:
        if os.environ.get(pg_server.REQUIRED_ENV):
            raise
        print(f"Alembic's suite on PostgreSQL skipped: {exc}", file=sys.stderr)
        return None
    return server.create_database("alembic_suite")


def _options(urls: list[str]) -> argparse.Namespace:
    """The plugin's command-line options, as its own pytest_addoption defines them."""
    parser = argparse.ArgumentParser()

    class Group:
        def addoption(self, *names: str, **kw: Any) -> None:
            parser.add_argument(*names, **kw)

    class Parser:
        def getgroup(self, name: str) -> Group:
            return Group()

    pytestplugin.pytest_addoption(Parser())
    return parser.parse_args([arg for url in urls for arg in ("--dburi", url)])


def _file_config() -> configparser.ConfigParser:
    """What a dialect's setup.cfg gives the plugin."""
    config = configparser.ConfigParser()
    config.read_dict(
        {
            "sqla_testing": {"requirement_cls": REQUIREMENTS, "profile_file": os.devnull},
            "db": {},
        }
    )
    return config


def _set_up_plugin() -> list[Any]:
    """Configure SQLAlchemy's testing plugin; its warning filters, taken back out."""
    urls = [_duckdb_url()]
    postgresql = _postgresql_url()
    if postgresql is not None:
        urls.append(postgresql)
    before = list(warnings.filters)
    plugin_base.file_config = _file_config()
    plugin_base.pre_begin(_options(urls))
    plugin_base.set_coverage_flag(False)
    plugin_base.set_fixture_functions(pytestplugin.PytestFixtureFunctions)
    plugin_base.post_begin()
    filters = list(warnings.filters)
    warnings.filters[:] = before
    return filters


SUITE_FILTERS = _set_up_plugin()

# the plugin's fixtures, which its base test class uses
setup_class_methods = pytestplugin.setup_class_methods
setup_test_methods = pytestplugin.setup_test_methods


def _ours(item: pytest.Item) -> bool:
    return HERE in item.path.parents


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    ours = [item for item in items if _ours(item)]
    if not ours:
        return
    pytestplugin.pytest_collection_modifyitems(session, config, ours)
    items[:] = [item for item in items if not _ours(item)] + ours


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The plugin's last checks (no connection left checked out), and its engines closed."""
    plugin_base.final_process_cleanup()
    for config in testing_config.Config.all_configs():
        config.db.dispose()


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    return pytestplugin.pytest_pycollect_makeitem(collector, name, obj)


def pytest_runtest_setup(item: pytest.Item) -> None:
    pytestplugin.pytest_runtest_setup(item)


def pytest_runtest_call(item: pytest.Item) -> None:
    pytestplugin.pytest_runtest_call(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    hook = pytestplugin.pytest_runtest_teardown(item, nextitem)
    next(hook)
    try:
        return (yield)
    finally:
        next(hook, None)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    pytestplugin.pytest_runtest_logreport(report)


@pytest.fixture(scope="class", autouse=True)
def scratch_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Alembic's ``scratch`` folder (its classes' setup makes it) in a temporary one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("alembic_scratch"))
        yield


@pytest.fixture(autouse=True)
def suite_warnings() -> Iterator[None]:
    """The plugin's warning filters, for this directory's tests only."""
    with warnings.catch_warnings():
        warnings.filters[:] = SUITE_FILTERS
        yield
