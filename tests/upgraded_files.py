"""The V3 files that tests drive the application's paths on, once upgraded to head.

``BUILDERS`` maps a name to a function that writes a pre-Alembic V3 file at
a path; ``tests/test_app_paths.py`` upgrades each to head (quarantining what
V4 refuses) and writes and reads on it as the Egregora application does. The
corpus of field files (issue 21, item 3) plugs in here: ``register(name,
builder)`` for each of its variants that adopts, and every test over
``upgraded_file`` runs on it too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import duckdb

from . import legacy, messy
from .field import corpus

Builder = Callable[[Path], None]


def messy_v3(path: Path) -> None:
    """tests/messy.py: a few thousand rows of field-like data, V4's violations planted."""
    messy.build_v3(path)


def empty_v3(path: Path) -> None:
    """The legacy DDL and its documents_view, no rows: a first run of the old app."""
    con = duckdb.connect(str(path))
    try:
        legacy.create(con)
    finally:
        con.close()


def v3_without_view(path: Path) -> None:
    """The six tables without documents_view (the legacy code made it optionally)."""
    con = duckdb.connect(str(path))
    try:
        legacy.create(con, view=False)
    finally:
        con.close()


BUILDERS: dict[str, Builder] = {
    "messy-v3": messy_v3,
    "empty-v3": empty_v3,
    "v3-without-view": v3_without_view,
}


#: -x options a builder's file needs to be adopted (a conversion asked for explicitly)
NEEDS: dict[str, dict[str, str]] = {}


def register(name: str, builder: Builder, needs: dict[str, str] | None = None) -> None:
    """Add a variant (the field corpus); a name is registered once."""
    if name in BUILDERS:
        raise ValueError(f"an upgraded-file builder named {name!r} is already registered")
    BUILDERS[name] = builder
    NEEDS[name] = dict(needs or {})


def _register_field_corpus() -> None:
    """Every file of the field corpus that adopts (tests/field/): the app's own files."""
    for name, variant in corpus.VARIANTS.items():
        if not variant.never:
            register(f"field-{name}", partial(corpus.build, variant), variant.needs)


_register_field_corpus()
