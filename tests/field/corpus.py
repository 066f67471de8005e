"""The corpus of the field's files: each variant of the database the Egregora application made.

Each ``<variant>.sql`` here holds the DDL DuckDB stored for a file that the
application's own code made at one commit of ``franklinbaldo/egregora`` (its
header names the commit, the code, and how it was measured), then rows in the
shapes the application writes, messy ones included. :func:`build` makes a
variant a real DuckDB file. docs/field-files.md says what adoption does with
each variant, difference by difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
V3_TABLES = ("posts", "profiles", "media", "journals", "tasks", "annotations")


@dataclass(frozen=True)
class Variant:
    """One file the application made, and what adoption must do with it."""

    name: str
    #: -x options that adopting it needs (a conversion asked for explicitly)
    needs: dict[str, str] = field(default_factory=dict)
    #: None: adopted; else words its refusal says (without ``needs``: why it needs them)
    refusal: str | None = None
    #: True: refused whatever the options (another lineage)
    never: bool = False
    #: words the adoption's list of differences says, one per expected difference
    says: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.sql"

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def commit(self) -> str:
        match = re.search(r"^-- app: franklinbaldo/egregora ([0-9a-f]{9})", self.sql, re.M)
        assert match, f"{self.path.name} names no commit"
        return match.group(1)

    def statements(self, kind: str) -> list[str]:
        """The stored DDL of the file (``CREATE TABLE``, ``CREATE INDEX``...), as written."""
        return [
            line.rstrip(";")
            for line in self.sql.splitlines()
            if line.startswith("CREATE ") and _kind(line) == kind
        ]

    @property
    def others(self) -> list[str]:
        """The tables of the application's other stores in the file."""
        return [
            name
            for name in (_table_name(s) for s in self.statements("TABLE"))
            if name not in V3_TABLES
        ]


def _kind(statement: str) -> str:
    words = statement.split()
    return words[2] if words[1] == "UNIQUE" else words[1]


def _table_name(statement: str) -> str:
    return statement.split()[2].split("(")[0]


VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "dec2025_startup",
            says=(
                "posts: lacks V3's CHECK (status in",
                "media: lacks V3's CHECK (media_type in",
                "tasks: lacks V3's CHECK (status in",
                "tasks: lacks V3's CHECK (task_type in",
                "annotations: lacks V3's CHECK (parent_type in",
                "annotations: PRIMARY KEY (id) -> kept",
                "annotations: column id has DEFAULT nextval('annotations_id_seq') -> not carried",
                "annotations: index idx_annotations_parent_created",
            ),
        ),
        Variant("helper_v3"),
        Variant(
            "helper_then_writers",
            says=("annotations: PRIMARY KEY (id) -> kept", "index idx_annotations_parent_created"),
        ),
        Variant(
            "plan_startup",
            says=(
                "journals: the table is missing -> created empty",
                "posts: lacks V3's CHECK (status in",
                "annotations: PRIMARY KEY (id) -> kept",
            ),
        ),
        Variant(
            "journals_migration",
            says=("journals: CHECK (window_end >= window_start) -> kept",),
        ),
        Variant(
            "enrich_url_startup",
            says=("tasks: CHECK (task_type in", "allows 'enrich_url' beyond V3's"),
        ),
        Variant(
            "documents_fk_startup",
            says=(
                "annotations: FOREIGN KEY (parent_id) REFERENCES documents (id), documents "
                "being another store's table -> not carried by the next rebuild",
            ),
        ),
        Variant(
            "ibis_timestamp_startup",
            needs={"naive_timestamps": "UTC"},
            refusal="-x naive_timestamps=UTC",
            says=(
                "annotations: column created_at is TIMESTAMP (no time zone), V3 has TIMESTAMP "
                "WITH TIME ZONE -> converted by adoption's rebuild, its values read as UTC",
                "media: the table is missing -> created empty",
            ),
        ),
        Variant("unified_documents_startup", refusal="unified-documents lineage", never=True),
    )
}


def build(variant: Variant, path: Path) -> None:
    """Make ``variant`` the DuckDB file ``path`` (which must not exist yet)."""
    con = duckdb.connect(str(path))
    try:
        con.execute(variant.sql)
    finally:
        con.close()
