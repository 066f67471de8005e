"""What differs between the DuckDB versions this package supports, in one place.

The range is ``duckdb>=1.4.3,<3`` (pyproject.toml): the Egregora application
runs DuckDB 1.4, and the package is installed into its environment, so it
must work on the application's DuckDB as well as on the newest. The suite
runs at both ends (``constraints/duckdb-1.4.txt``, ``constraints/duckdb-2.0.txt``:
``make test-all``). Every difference found between them is here, measured:

- ``ALTER TABLE`` (``benchmarks/measure_alter.py`` on 1.4.3 and 2.0.1, 583
  cells each; ``tests/migration/test_capabilities.py`` re-runs them on the
  DuckDB it runs on): 1.4 can't add a column with a constraint ("Parser
  Error: Adding columns with constraints not yet supported": NOT NULL, with
  or without a DEFAULT, and UNIQUE), can't ``ADD UNIQUE`` ("Not implemented
  Error: No support for that ALTER TABLE option yet!") and can't SET or DROP
  a column's DEFAULT on a table that an explicit index or a FOREIGN KEY
  depends on ("Dependency Error: Cannot alter entry ... depend on it"). 2.0
  does all three: 73 cells differ, the other 510 agree.
- Catalog and functions (found by the suite on 1.4.3): 1.4 has no
  ``setval()`` (``Catalog Error: Scalar Function with name setval does not
  exist``), its ``information_schema.columns.is_generated`` is NULL, and its
  ``duckdb_columns()`` has no ``is_generated`` (``Binder Error: Referenced
  column "is_generated" not found``, found by Alembic's dialect suite through
  reflection): ``catalog.generated_columns`` reads generated columns a way
  both answer, for rebuilds and for reflection.
- Memory: a rebuild past ``memory_limit`` that 2.0 completes by spilling to
  temporary files (a 190 MB copy under 88 MB, tests/test_faults.py) runs out
  of memory on 1.4 while it builds the PRIMARY KEY's index ("Out of Memory:
  failed to allocate data of size 64.0 KiB"; measured on 1.4.3), and a
  failed COMMIT says "failed to pin block" with no class name: both are
  refused in one paragraph, the database unchanged.
- Files: DuckDB 2.0 creates files that 1.x can't open ("Trying to read a
  database file with version number 999, but we can only read versions
  between 64 and 67"), unless told a storage version; an existing file
  keeps the version it was created with whatever DuckDB writes to it (see
  :data:`STORAGE_VERSION`).

A revision must run on every supported DuckDB, so what autogenerate writes
follows :data:`PORTABLE` (what all of them do), while a running migration
plans for the DuckDB it runs on (:func:`features`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import duckdb

#: the oldest DuckDB this package supports (pyproject.toml), as a version tuple
OLDEST: Final = (1, 4, 3)


@dataclass(frozen=True)
class DuckDBFeatures:
    """What one DuckDB does among the things 1.4 and 2.0 differ on."""

    #: ``ALTER TABLE ... ADD COLUMN`` with NOT NULL (with or without a DEFAULT) or UNIQUE
    constrained_column: bool
    #: ``ALTER TABLE ... ADD UNIQUE (...)``
    add_unique: bool
    #: ``ALTER TABLE`` SET/DROP DEFAULT on a table an explicit index or FOREIGN KEY depends on
    default_on_depended_table: bool
    #: ``setval(sequence, value)``
    setval: bool
    #: ``TRY(...)`` kept when one query counts several rules over a relation that
    #: casts the same column (1.4's optimizer shares the bare CAST: "Could not
    #: convert string 'a' to INT32", measured on 1.4.3; one rule per query works)
    try_in_shared_scans: bool = True
    #: ``hash(...)`` of a collated VARCHAR hashes the collated value, as GROUP BY
    #: and UNIQUE compare it (measured: 'A' and 'a' under NOCASE, a column's or the
    #: default_collation, one hash on 2.0.1; two on 1.4.3, where GROUP BY makes one)
    hash_follows_collation: bool = True


#: DuckDB 1.4 (measured on 1.4.3), and what this package assumes below 2.0
DUCKDB_1_4: Final = DuckDBFeatures(
    constrained_column=False,
    add_unique=False,
    default_on_depended_table=False,
    setval=False,
    try_in_shared_scans=False,
    hash_follows_collation=False,
)
#: DuckDB 2.0 (measured on 2.0.1)
DUCKDB_2_0: Final = DuckDBFeatures(
    constrained_column=True, add_unique=True, default_on_depended_table=True, setval=True
)
#: what every supported DuckDB does: what a generated revision may count on
PORTABLE: Final = DUCKDB_1_4


def version(text: str = duckdb.__version__) -> tuple[int, int, int]:
    """``"2.0.1"`` as ``(2, 0, 1)`` (a suffix such as ``-dev123`` is ignored)."""
    major, minor, patch = ([int(p) for p in re.findall(r"\d+", text)] + [0, 0, 0])[:3]
    return major, minor, patch


def features(running: tuple[int, int, int] | None = None) -> DuckDBFeatures:
    """What DuckDB ``running`` (default: this process's) does."""
    return DUCKDB_2_0 if (running or version()) >= (2, 0, 0) else DUCKDB_1_4


#: The storage version of the files a migration creates: what the oldest
#: supported DuckDB reads. DuckDB's ``storage_compatibility_version`` setting
#: decides the format of a file when it is created and nothing else: a file
#: keeps its format whatever DuckDB later writes to it (measured on 2.0.1:
#: files made by 1.4.3, in format v1.0.0, and by 2.0.1 with v1.4.0, stay so
#: through tables, indexes and CHECKPOINT; a 2.0 file opened with v1.4.0
#: stays 2.0). Without it 2.0.1 creates v2.0.0 files, which 1.4.3 can't open.
#: 1.4.3 itself creates v1.0.0 files (its default is v0.10.2). A URL may ask
#: for another: ``duckdb:///f.duckdb?storage_compatibility_version=latest``.
STORAGE_VERSION: Final = "v1.4.0"
STORAGE_SETTING: Final = "storage_compatibility_version"


__all__ = [
    "DUCKDB_1_4",
    "DUCKDB_2_0",
    "OLDEST",
    "PORTABLE",
    "STORAGE_SETTING",
    "STORAGE_VERSION",
    "DuckDBFeatures",
    "features",
    "version",
]
