"""What a pre-Alembic Egregora file differs from V3 by, and what the history does with each.

The Egregora application made its files with its own code, and that code
changed week by week (docs/field-files.md lists the variants, measured by
running the application's own start-up): a table missing, a V3 CHECK
forgotten, a PRIMARY KEY and an index added by its annotation store, a CHECK
whose allowed values it widened, ``TIMESTAMP`` where V3 has ``TIMESTAMP WITH
TIME ZONE``. :func:`assess` compares such a file with the V3 baseline and
sorts every difference into one of two kinds:

- **taken forward** (:class:`Difference`): nothing is lost and nothing is
  converted unasked. Each says what adoption does with it, or what the later
  revisions do: created empty, added by a rebuild whose rows are checked
  first, kept because the later schema declares it too, or not carried by
  the table's next rebuild (rules and defaults of no revision: no row
  changes).
- **refused** (a sentence in :attr:`Assessment.refusals`): values a column
  the schema doesn't know holds, a conversion nobody asked for, a file of
  another lineage. Adoption then changes nothing.

Both sides are spelled by the database itself (catalog.expected_shapes), and
every list comes out in one order, whatever Python's hash seed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from egregora.database.migration.catalog import (
    ColumnShape,
    ConstraintShape,
    TableShape,
    values_in,
)
from egregora.database.migration.definitions import fk_signature
from egregora.database.migration.dialects import catalog_of

VERSION_TABLE = "alembic_version"
#: The later lineage of Egregora files: one ``documents`` table, a kind per row.
UNIFIED_TABLE, UNIFIED_KIND = "documents", "doc_type"
#: The V3 tables that hold content, each of one kind; that lineage has none of them.
CONTENT_TABLES = ("posts", "profiles", "media", "journals")

#: What happens to a difference that is taken forward, by kind (see _fate).
KEPT, NOT_CARRIED, INDEX, KEPT_LATER = "kept", "not carried", "index", "kept later"


@dataclass(frozen=True, order=True)
class Difference:
    """One way a V3 table of the file differs from V3, and what happens to it."""

    table: str
    what: str
    fate: str

    def describe(self) -> str:
        return f"{self.table}: {self.what} -> {self.fate}"


@dataclass
class Rebuild:
    """A table adoption rebuilds: V3's definition, with what of the file's it keeps."""

    target: sa.Table
    #: column -> SQL over the old row (the conversions asked for)
    column_map: dict[str, str] = field(default_factory=dict)


@dataclass
class Assessment:
    """Everything adoption would do to a file, or why it would not adopt it."""

    differences: list[Difference] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    #: V3 tables the file lacks, created empty
    create: list[str] = field(default_factory=list)
    rebuilds: dict[str, Rebuild] = field(default_factory=dict)
    #: objects that are not the schema's, by kind (table, view, macro, sequence)
    others: dict[str, list[str]] = field(default_factory=dict)
    #: the file holds no table at all: adoption creates the baseline
    empty: bool = False


@dataclass(frozen=True)
class Inputs:
    """What :func:`assess` compares: the baseline, the schema the history reaches, options."""

    baseline: sa.MetaData
    views: Sequence[str] = ()
    #: the newest schema (the run's target metadata): what "the later schema declares"
    head: sa.MetaData | None = None
    #: -x naive_timestamps: the zone TIMESTAMP values were written in, when asked
    naive_zone: str | None = None


def assess(bind: sa.Connection, inputs: Inputs) -> Assessment:
    """Compare the file behind ``bind`` with the baseline; change nothing."""
    tables, views = catalog_of(bind).tables_and_views()
    existing = tables - {VERSION_TABLE}
    if not existing:
        return Assessment(empty=True)
    owned = set(inputs.baseline.tables)
    present = existing & owned
    if not present:
        names = ", ".join(sorted(owned))
        return Assessment(
            refusals=[f"it holds none of V3's tables ({names}), only {_listed(existing)}"]
        )
    found = Assessment(others=_others(bind, existing - owned, views - set(inputs.views)))
    lineage = unified_lineage(bind, existing)
    if lineage is not None:
        found.refusals.append(lineage)
        return found
    found.create = sorted(owned - present)
    found.differences += [
        Difference(name, "the table is missing", "created empty, as V3 defines it")
        for name in found.create
    ]
    expected = catalog_of(bind).expected_shapes(
        [inputs.baseline.tables[n] for n in sorted(present)]
    )
    actual = catalog_of(bind).shapes(present)
    head = _head_tables(inputs.head, present)
    head_shapes = catalog_of(bind).expected_shapes(
        [_without_foreign_keys(t) for t in head.values()]
    )
    for name in sorted(present):
        table = _TableAssessment(bind, inputs, expected[name], actual[name], head.get(name))
        table.compare(head_shapes.get(name))
        table.add_to(found)
    found.differences += _referenced_from_others(bind, sorted(existing - owned), owned)
    found.differences.sort()
    return found


def _referenced_from_others(
    bind: sa.Connection, others: list[str], owned: set[str]
) -> list[Difference]:
    """FOREIGN KEYs of other stores' tables that reference a V3 table (its key is the file's)."""
    found = []
    for name, shape in sorted(catalog_of(bind).shapes(others).items()):
        for fk in sorted(shape.constraints, key=repr):
            if fk.kind == "FOREIGN KEY" and fk.referenced_table in owned:
                found.append(
                    Difference(
                        str(fk.referenced_table),
                        f"{name} ({', '.join(fk.columns)}), another store's table, references "
                        f"it ({', '.join(fk.referenced_columns)})",
                        f"kept: each rebuild of {fk.referenced_table} rebuilds {name} with its "
                        f"rows; `downgrade v3` is refused while it stands (V3's "
                        f"{fk.referenced_table} has no key to reference)",
                    )
                )
    return found


def unified_lineage(bind: sa.Connection, existing: set[str]) -> str | None:
    """Why the file belongs to Egregora's later unified-documents lineage, or None.

    That lineage keeps all content in one table, ``documents``, whose
    ``doc_type`` says each row's kind. A file whose ``documents`` holds rows,
    or that has such a table and none of V3's content tables, is of it; an
    empty ``documents`` beside V3's tables (the application created it at
    start-up for a while, unused) is another store's table, left alone.
    """
    if UNIFIED_TABLE not in existing:
        return None
    columns = {c.name for c in catalog_of(bind).shapes([UNIFIED_TABLE])[UNIFIED_TABLE].columns}
    if UNIFIED_KIND not in columns:
        return None
    rows = values_in(bind, UNIFIED_TABLE)
    content = [t for t in CONTENT_TABLES if t in existing]
    if rows == 0 and content:
        return None
    holds = f"which holds {rows} rows" if rows else "and none of V3's content tables"
    return (
        "it is a file of Egregora's later unified-documents lineage: its content lives in "
        f"one table, {UNIFIED_TABLE} ({UNIFIED_KIND} says each row's kind), {holds}, not in "
        f"V3's {', '.join(CONTENT_TABLES)}. This schema's history starts from V3's tables, "
        "so no revision describes such a file; keep it with the Egregora version that made "
        "it (docs/field-files.md)"
    )


class _TableAssessment:
    """One V3 table of the file against V3 and against the later schema."""

    def __init__(
        self,
        bind: sa.Connection,
        inputs: Inputs,
        expected: TableShape,
        actual: TableShape,
        head: sa.Table | None,
    ) -> None:
        self.bind = bind
        self.inputs = inputs
        self.name = expected.name
        self.expected = expected
        self.actual = actual
        self.head = head
        self.refusals: list[str] = []
        self.rebuild_reasons: list[Difference] = []
        #: (what, fate) of the differences whose fate depends on a rebuild
        self.extras: list[tuple[str, str]] = []
        self.kept: list[ConstraintShape] = []
        self.not_null: list[str] = []
        self.widened: dict[str, str] = {}
        self.converted: dict[str, str] = {}

    # -- columns -----------------------------------------------------------------

    def compare(self, head_shape: TableShape | None) -> None:
        want = {c.name: c for c in self.expected.columns}
        have = {c.name: c for c in self.actual.columns}
        for column in self.expected.columns:
            if column.name not in have:
                self.refusals.append(
                    f"{self.name} has no column {column.name}, which V3 has: adoption adds "
                    "no column to a table that holds rows"
                )
            else:
                self._column(column, have[column.name], head_shape)
        for column in self.actual.columns:
            if column.name not in want:
                self._unknown_column(column)
        self._constraints(head_shape)
        self.extras += [(f"index {index}", INDEX) for index in self._indexes()]

    def _column(self, want: ColumnShape, have: ColumnShape, head: TableShape | None) -> None:
        label = f"column {want.name}"
        if want.data_type != have.data_type:
            self._type(want, have)
        if want.nullable and not have.nullable and want.name not in self._key_columns():
            if head is not None and _not_null_in(head, want.name):
                self.not_null.append(want.name)
                self.extras.append((f"{label} is NOT NULL", KEPT))
            else:
                self.extras.append((f"{label} is NOT NULL", NOT_CARRIED))
        if have.default != want.default:
            self.extras.append((f"{label} has DEFAULT {have.default}", NOT_CARRIED))

    def _type(self, want: ColumnShape, have: ColumnShape) -> None:
        name = f"{self.name}.{want.name}"
        if not (_with_zone(want.data_type) and _without_zone(have.data_type)):
            self.refusals.append(
                f"{name} is {have.data_type} where V3 has {want.data_type}: no conversion "
                "between them is known"
            )
            return
        zone = self.inputs.naive_zone
        if zone is None:
            self.refusals.append(
                f"{name} is {have.data_type} (no time zone) where V3 has {want.data_type}: "
                "converting it needs the zone its values were written in (the Egregora "
                "application wrote UTC: ibis sets DuckDB's TimeZone to UTC). Ask for it "
                "with -x naive_timestamps=UTC (or the zone they were written in), and "
                f"adoption converts them ({want.name} AT TIME ZONE 'UTC')"
            )
            return
        quote = self.bind.dialect.identifier_preparer.quote
        self.converted[want.name] = f"{quote(want.name)} AT TIME ZONE '{zone}'"
        self.rebuild_reasons.append(
            Difference(
                self.name,
                f"column {want.name} is {have.data_type} (no time zone), V3 has {want.data_type}",
                f"converted by adoption's rebuild, its values read as {zone} times "
                f"(as -x naive_timestamps={zone} asks)",
            )
        )

    def _unknown_column(self, column: ColumnShape) -> None:
        name = f"{self.name}.{column.name}"
        values = values_in(self.bind, self.name, column.name)
        if values:
            self.refusals.append(
                f"{name} holds {values} values, and no revision of this schema has that "
                "column: adopting the file would drop them. Keep them elsewhere (a table "
                "of your own), drop the column, then upgrade"
            )
            return
        self.rebuild_reasons.append(
            Difference(
                self.name,
                f"column {column.name} is not V3's and holds no value",
                "dropped by adoption's rebuild",
            )
        )

    # -- constraints ---------------------------------------------------------------

    def _constraints(self, head: TableShape | None) -> None:
        missing = sorted(self.expected.constraints - self.actual.constraints, key=repr)
        extra = sorted(self.actual.constraints - self.expected.constraints, key=repr)
        for constraint in missing:
            wider = next((e for e in extra if _widens(constraint, e)), None)
            if wider is not None:
                extra.remove(wider)
                self._widened(constraint, wider)
                continue
            self.rebuild_reasons.append(
                Difference(
                    self.name,
                    f"lacks V3's {constraint.describe()}",
                    "added by adoption's rebuild, every row checked first: refused, or "
                    "quarantined with -x on_violation=quarantine",
                )
            )
        for constraint in extra:
            self._extra(constraint, head)

    def _widened(self, v3: ConstraintShape, wider: ConstraintShape) -> None:
        added = sorted(_values(wider) - _values(v3))
        self.widened[str(v3.expression)] = str(wider.expression)
        self.extras.append(
            (
                f"{wider.describe()} allows {', '.join(added)} beyond V3's {v3.describe()}",
                "kept; rows holding those values are judged by the first later revision "
                f"that rebuilds {self.name} with a narrower rule: refused, or quarantined",
            )
        )  # a fate of its own: said as it is

    def _extra(self, constraint: ConstraintShape, head: TableShape | None) -> None:
        what = constraint.describe()
        if constraint.kind == "FOREIGN KEY":
            if self.head is not None and _declares_fk(self.head, constraint):
                self.extras.append((what, KEPT_LATER))
                return
            owned = set(self.inputs.baseline.tables)
            if constraint.referenced_table not in owned:
                what += f", {constraint.referenced_table} being another store's table"
            self.extras.append((what, NOT_CARRIED))
            return
        if head is not None and constraint in head.constraints:
            self.kept.append(constraint)
            self.extras.append((what, KEPT))
            return
        self.extras.append((what, NOT_CARRIED))

    def _key_columns(self) -> set[str]:
        return {c for k in self.actual.constraints if k.kind == "PRIMARY KEY" for c in k.columns}

    def _indexes(self) -> list[str]:
        declared = {str(i.name) for i in self.head.indexes} if self.head is not None else set()
        return [
            i
            for i in catalog_of(self.bind).undeclared_indexes(self.name)
            if i.split()[0] not in declared
        ]

    # -- the outcome -------------------------------------------------------------------

    def add_to(self, found: Assessment) -> None:
        found.refusals += self.refusals
        rebuilt = bool(self.rebuild_reasons) and not self.refusals
        found.differences += self.rebuild_reasons
        for what, kind in self.extras:
            found.differences.append(Difference(self.name, what, _fate(kind, self.name, rebuilt)))
        if rebuilt:
            found.rebuilds[self.name] = Rebuild(self._target(), dict(self.converted))

    def _target(self) -> sa.Table:
        """V3's definition of the table, with the file's widened CHECKs in place of V3's,
        and the file's rules that the later schema declares too (kept, not dropped and
        added again)."""
        baseline = self.inputs.baseline
        meta = sa.MetaData(naming_convention=baseline.naming_convention)
        target = baseline.tables[self.name].to_metadata(meta)
        spelled = (
            {expr: check for check, expr in catalog_of(self.bind).spelled_checks(target)}
            if self.widened
            else {}
        )
        for expression, wider in sorted(self.widened.items()):
            check = spelled[expression]
            target.constraints.discard(check)
            target.append_constraint(sa.CheckConstraint(sa.text(wider), name=check.name))
        for column in self.not_null:
            target.c[column].nullable = False
        if self.head is not None:
            _carry(self.bind, target, self.head, self.kept)
        return target


def _fate(kind: str, table: str, rebuilt: bool) -> str:
    """What happens to a difference taken forward, said once, the same way every time."""
    rebuild = f"adoption's rebuild of {table}" if rebuilt else f"the next rebuild of {table}"
    if kind == KEPT or (kind == KEPT_LATER and not rebuilt):
        return "kept: the later schema declares it too"
    if kind == KEPT_LATER:
        return (
            f"left out by {rebuild}, added again (every row checked) by the revision that "
            "adds it: the later schema declares it too"
        )
    if kind == NOT_CARRIED:
        return f"not carried by {rebuild}: not the schema's, and no row changes"
    if kind == INDEX:
        return "kept by every rebuild: not the schema's, and alembic check leaves it alone"
    return kind


def _carry(
    bind: sa.Connection, target: sa.Table, head: sa.Table, kept: list[ConstraintShape]
) -> None:
    """Add to ``target`` the rules of ``head`` that ``kept`` (the file's) match."""
    for shape in kept:
        if shape.kind == "PRIMARY KEY" and head.primary_key.columns:
            for name in shape.columns:
                target.c[name].nullable = False
            target.append_constraint(
                sa.PrimaryKeyConstraint(*shape.columns, name=_name(head.primary_key))
            )
        elif shape.kind == "UNIQUE":
            for unique in head.constraints:
                if (
                    isinstance(unique, sa.UniqueConstraint)
                    and tuple(c.name for c in unique.columns) == shape.columns
                ):
                    target.append_constraint(sa.UniqueConstraint(*shape.columns, name=unique.name))
    expressions = {str(s.expression) for s in kept if s.kind == "CHECK"}
    for check, expression in catalog_of(bind).spelled_checks(head) if expressions else []:
        if expression in expressions:
            target.append_constraint(sa.CheckConstraint(check.sqltext, name=check.name))


def _name(constraint: sa.Constraint) -> str | None:
    return constraint.name if isinstance(constraint.name, str) else None


def _head_tables(head: sa.MetaData | None, names: Iterable[str]) -> dict[str, sa.Table]:
    if head is None:
        return {}
    return {name: head.tables[name] for name in sorted(names) if name in head.tables}


def _without_foreign_keys(table: sa.Table) -> sa.Table:
    """A copy of ``table`` without FOREIGN KEYs: its shape, spelled alone (the tables it
    references may not be among those spelled; FOREIGN KEYs are compared by signature)."""
    copy = sa.Table(
        table.name,
        sa.MetaData(),
        *(
            sa.Column(
                c.name,
                c.type,
                nullable=c.nullable,
                primary_key=c.primary_key,
                server_default=c.server_default,
            )
            for c in table.columns
        ),
    )
    for constraint in table.constraints:
        if isinstance(constraint, sa.CheckConstraint):
            copy.append_constraint(sa.CheckConstraint(constraint.sqltext, name=constraint.name))
        elif isinstance(constraint, sa.UniqueConstraint):
            columns = [c.name for c in constraint.columns]
            copy.append_constraint(sa.UniqueConstraint(*columns, name=constraint.name))
    return copy


def _declares_fk(head: sa.Table, shape: ConstraintShape) -> bool:
    wanted = (shape.columns, shape.referenced_table, shape.referenced_columns)
    return any(fk_signature(fk) == wanted for fk in head.foreign_key_constraints)


def _not_null_in(shape: TableShape, column: str) -> bool:
    return any(c.name == column and not c.nullable for c in shape.columns)


def _with_zone(data_type: str) -> bool:
    return data_type.upper() in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")


def _without_zone(data_type: str) -> bool:
    return data_type.upper() in ("TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE")


#: ``col IN ('a', 'b')`` as DuckDB stores it, and as PostgreSQL does
#: (``(col)::text = ANY ((ARRAY['a'::character varying, ...])::text[])``)
_IN_LIST = re.compile(r'^\(*"?(\w+)"?\)?(?:::\w+(?: \w+)?)?\s+(?:in\s*\(|=\s*any\s*\()(.*)$')
_LITERAL = re.compile(r"'((?:[^']|'')*)'")
#: what may stand beside the literals of such a list: casts and brackets, nothing else
_LIST_REST = re.compile(r"^[\s,()\[\]:]*(?:(?:array|character|varying|text)[\s,()\[\]:]*)*$")


def _in_list(shape: ConstraintShape) -> tuple[str, frozenset[str]] | None:
    """(column, values) of a CHECK that allows a list of values, else None."""
    if shape.kind != "CHECK" or shape.expression is None:
        return None
    match = _IN_LIST.match(shape.expression)
    if match is None or not _LIST_REST.match(_LITERAL.sub("", match.group(2))):
        return None
    return match.group(1), frozenset(v.replace("''", "'") for v in _LITERAL.findall(match.group(2)))


def _values(shape: ConstraintShape) -> frozenset[str]:
    found = _in_list(shape)
    return frozenset(f"'{v}'" for v in found[1]) if found else frozenset()


def _widens(v3: ConstraintShape, other: ConstraintShape) -> bool:
    """Whether ``other`` allows every value of the list ``v3`` allows, and more."""
    narrow, wide = _in_list(v3), _in_list(other)
    return narrow is not None and wide is not None and narrow[0] == wide[0] and narrow[1] < wide[1]


def _others(bind: sa.Connection, tables: set[str], views: set[str]) -> dict[str, list[str]]:
    """Objects that are not the schema's, by kind: what adoption leaves alone."""
    kinds = {
        "table": tables,
        "view": views,
        "macro": catalog_of(bind).macro_names(),
        "sequence": catalog_of(bind).sequence_names(),
    }
    return {kind: sorted(names) for kind, names in kinds.items() if names}


def _listed(names: Iterable[str]) -> str:
    ordered = sorted(names)
    return f"{len(ordered)} other table{'' if len(ordered) == 1 else 's'} ({', '.join(ordered)})"


__all__ = [
    "Assessment",
    "Difference",
    "Inputs",
    "Rebuild",
    "assess",
    "unified_lineage",
]
