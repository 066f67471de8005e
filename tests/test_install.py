"""Installed into the application's environment, the package keeps its DuckDB and its ibis.

The environment is ``.venv-duckdb-1.4`` (the ``oldest_python`` fixture): the application's
DuckDB 1.4.3 and ibis 11. pip resolves the package there against PyPI and the
environment's own packages, and says what it would install (``--dry-run``): nothing
but the package itself. With the old requirement (``duckdb>=2.0``) it would replace
DuckDB.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow  # asks PyPI; may build .venv-duckdb-1.4


def would_install(python: Path, requirement: str) -> dict[str, str]:
    """{name: version} that ``pip install requirement`` would install with ``python``."""
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", requirement],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in report["install"]}


def installed(python: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_installing_the_package_keeps_the_application_s_duckdb_and_ibis(
    oldest_python: Path,
) -> None:
    assert installed(oldest_python, "duckdb").startswith("1.4.")
    for requirement in (str(ROOT), f"{ROOT}[ibis]"):
        planned = would_install(oldest_python, requirement)
        assert set(planned) == {"egregora-schema"}, planned
