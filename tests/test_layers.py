"""The house rules of ``src``, checked on the code itself (issue 13).

- The application's run-time modules (schemas, guard, erd) never import
  Alembic, nor the migration machinery.
- No import cycle between modules, counting imports inside functions.
- No private name (``_x``) is imported from another module of ours; from a
  third-party package only where a module says why (``ALLOWED_PRIVATE``).
- The engine is chosen once, by dialect name: only the registries
  (``dialects.py``, ``copyswap/planner.py``) and the impls read it.
- Planning reads no database: the planning modules import no connection,
  catalog, run state or impl (``PLANNING``, ``NOT_PLANNING``).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "egregora"

#: (module, imported from): private names taken from a third-party package, and why
ALLOWED_PRIVATE = {
    # duckdb-sqlalchemy keeps its implicit-sequence rule and naming in private
    # helpers; sequences.py is the one module that asks them (see its docstring)
    ("egregora.database.migration.sequences", "duckdb_sqlalchemy"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(module: str) -> list[tuple[str, list[str]]]:
    """(imported module, names) of every import in ``module``, inside functions too."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append((base, [alias.name for alias in node.names]))
    return found


def internal_edges(module: str) -> set[str]:
    """The modules of ours that ``module`` imports (``from pkg import mod`` counts mod)."""
    edges = set()
    for base, names in imports(module):
        for name in names or [""]:
            candidate = f"{base}.{name}" if name else base
            if candidate in MODULES:
                edges.add(candidate)
            elif base in MODULES:
                edges.add(base)
    return edges - {module}


#: the run-time layer an application imports without the ``ibis`` extra
RUN_TIME = (
    "egregora.database.schemas",
    "egregora.database.guard",
    "egregora.database.duckdb_guard",
    "egregora.database.erd",
)


def test_the_application_modules_never_import_alembic() -> None:
    code = (
        "import sys\n"
        f"import {', '.join(RUN_TIME)}, egregora.database.ibis_schemas\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'\n"
        "             or m.startswith('egregora.database.migration'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_the_run_time_layer_loads_no_ibis() -> None:
    """Only ``ibis_schemas`` imports ibis: without it, ibis is never loaded, and the
    run-time layer works where ibis is not installed (an import of it fails here)."""
    code = (
        "import sys\n"
        "sys.modules['ibis'] = None  # as if not installed: importing it raises\n"
        f"import {', '.join(RUN_TIME)}\n"
        "from egregora.database import schemas\n"
        "assert schemas.ALLOWED_VALUES['tasks']['task_type'] == schemas.TASK_TYPES\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ibis' and sys.modules[m]))\n"
        "try:\n"
        "    import egregora.database.ibis_schemas\n"
        "except ImportError:\n"
        "    print('ibis_schemas needs ibis')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split("\n")[:2] == ["[]", "ibis_schemas needs ibis"]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``graph`` meets."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, set())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def private_imports(module: str, found: list[tuple[str, list[str]]]) -> list[str]:
    offences = []
    for base, names in found:
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        if private and (
            base.startswith("egregora") or (module, base.split(".")[0]) not in ALLOWED_PRIVATE
        ):
            offences.append(f"{module}: from {base} import {', '.join(private)}")
    return offences


def test_no_import_cycle() -> None:
    assert find_cycles({m: internal_edges(m) for m in MODULES}) == []


def test_the_checks_could_fail() -> None:
    """A cycle, a function-level import and a private import are all seen."""
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert "egregora.database.migration.copyswap.rebuild" in internal_edges(
        "egregora.database.migration.copyswap.toimpl"
    )
    found = [("egregora.database.migration.copyswap.rebuild", ["_Rebuild", "rebuild"])]
    assert private_imports("m", found) == [
        "m: from egregora.database.migration.copyswap.rebuild import _Rebuild"
    ]
    assert private_imports("m", [("duckdb_sqlalchemy", ["_column_needs_implicit_sequence"])])


def test_no_private_name_is_imported_across_modules() -> None:
    offences = [o for m in MODULES for o in private_imports(m, imports(m))]
    assert offences == []


#: Where a dialect's name may be read: the registries and the impls (issue 23)
CHOOSERS = {
    "egregora/database/migration/dialects.py",
    "egregora/database/migration/copyswap/planner.py",
    "egregora/database/migration/duckdb/impl.py",
    "egregora/database/migration/postgresql/impl.py",
    # URLs, checked before any connection (or dialect) exists
    "egregora/database/migration/config.py",
}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (PACKAGE / "database" / "migration").rglob("*.py")),
    ids=lambda p: str(p.relative_to(PACKAGE / "database" / "migration")),
)
def test_the_engine_is_chosen_in_one_place(path: Path) -> None:
    """Only the registries and the impls ask which database this is."""
    compares = re.findall(
        r"""dialect\.name\b|["'](?:duckdb|postgresql)["']\s*:""", path.read_text()
    )
    assert compares == [] or str(path.relative_to(SRC)) in CHOOSERS


M = "egregora.database.migration"
#: Planning: pure functions of definitions and facts already read (sqlite-utils'
#: transform_sql): printable and testable without a database.
PLANNING = [
    f"{M}.copyswap.{name}"
    for name in (
        "model",
        "planner",
        "fusion",
        "rules",
        "steps",
        "duckdb",
        "postgresql",
        "writer",
        "barriers",
        "validate",
    )
] + [f"{M}.definitions", f"{M}.opchange"]
#: What planning never imports: connections, the catalog, the run, the engines' impls.
NOT_PLANNING = (
    "duckdb",
    "psycopg",
    # Alembic's operations are data (alembic.operations.ops); its runtime is not
    "alembic.runtime",
    "alembic.ddl",
    "alembic.command",
    "alembic.context",
    "alembic.op",
    f"{M}.catalog",
    f"{M}.impl",
    f"{M}.dialects",
    f"{M}.duckdb",
    f"{M}.postgresql",
    f"{M}.runstate",
    f"{M}.environment",
    f"{M}.copyswap.rebuild",
    f"{M}.copyswap.held",
    f"{M}.copyswap.script",
    f"{M}.copyswap.toimpl",
    f"{M}.copyswap.preflight",
    f"{M}.adoption",
)


def forbidden_in_planning(module: str) -> list[str]:
    """What ``module`` imports that planning may not (see NOT_PLANNING)."""
    found = []
    for imported, names in imports(module):
        targets = [imported, *(f"{imported}.{n}" for n in names)]
        for target in targets:
            if any(target == bad or target.startswith(bad + ".") for bad in NOT_PLANNING):
                found.append(target)
    return found


@pytest.mark.parametrize("module", PLANNING)
def test_planning_reads_no_database(module: str) -> None:
    """A plan comes from data: no planning module reaches a connection, the catalog or the run.

    The bridges are stated: ``sequences.py`` asks duckdb-sqlalchemy how it names
    implicit sequences, ``duckdb_versions.py`` what the installed DuckDB does.
    """
    assert forbidden_in_planning(module) == []


def test_the_planning_check_could_fail() -> None:
    assert forbidden_in_planning(f"{M}.copyswap.rebuild")  # it runs plans: it reads
    assert forbidden_in_planning(f"{M}.duckdb.impl")
