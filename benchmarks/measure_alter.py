"""What DuckDB's ALTER can do: every plain op autogenerate emits, on tables of every shape.

Each cell builds a tiny table ``t(id, a, b, c)`` in its own DuckDB database,
gives it one trait (a key, an index, a FOREIGN KEY, a view... placed before,
on or after the altered column ``b``), and runs one Alembic operation two ways:

- ``raw``: the SQL Alembic and duckdb-sqlalchemy render for the op (offline,
  so no batch-mode rerouting), executed in one transaction;
- ``impl``: the op run online through ``EgregoraDuckDBImpl``, which routes
  DROP COLUMN and some ALTER COLUMNs to batch mode when the table has indexes.

A cell passes only if the statements commit and the table ends as intended.
``tests/migration/test_capabilities.py`` checks ``egregora.database.migration.capabilities``
against the ``raw`` column of these same cells.

Run: PYTHONPATH=src .venv/bin/python benchmarks/measure_alter.py [--impl] [--op X] [--trait Y]
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.operations import ops as alembic_ops
from duckdb_sqlalchemy.alembic_impl import DuckDBImpl

import alembic
import egregora.database.migration.impl  # noqa: F401  (registers EgregoraDuckDBImpl)
from egregora.database.migration.capabilities import (
    TableTraits,
    duckdb_can_alter,
    traits_from_database,
)
from egregora.database.migration.duckdb_versions import features

TABLE = "t"


class NotApplicable(Exception):
    """The op's precondition contradicts the trait (two primary keys)."""


@dataclass
class Shape:
    """The schema a cell starts from: ``t(id, a, b, c)``, a parent ``p``, maybe a child ``k``."""

    b_type: type[sa.types.TypeEngine[Any]] = sa.String
    b_nullable: bool = True
    b_default: str | None = None
    empty: bool = False
    table_comment: str | None = None
    pk: tuple[str, ...] | None = None
    uniques: set[str] = field(default_factory=set)
    indexes: dict[str, tuple[str, bool]] = field(default_factory=dict)
    fks: set[str] = field(default_factory=set)
    checks: set[str] = field(default_factory=set)
    referenced_on: str | None = None
    view_of: tuple[str, ...] | None = None

    def set_pk(self, column: str) -> None:
        if self.pk is not None and self.pk != (column,):
            raise NotApplicable("a second primary key")
        self.pk = (column,)

    def metadata(self) -> sa.MetaData:
        md = sa.MetaData()
        sa.Table(
            "p",
            md,
            sa.Column("i", sa.Integer, primary_key=True),
            sa.Column("s", sa.String, unique=True),
        )
        b_default = sa.text(self.b_default) if self.b_default is not None else None
        args: list[Any] = [
            sa.Column("id", sa.Integer, nullable=False),
            sa.Column("a", sa.Integer),
            sa.Column("b", self.b_type(), nullable=self.b_nullable, server_default=b_default),
            sa.Column("c", sa.Integer),
        ]
        if self.pk:
            args.append(sa.PrimaryKeyConstraint(*self.pk))
        args += [sa.UniqueConstraint(col) for col in sorted(self.uniques)]
        args += [sa.CheckConstraint(sa.text(f"{col} IS NOT NULL")) for col in sorted(self.checks)]
        for col in sorted(self.fks):
            target = "p.s" if col == "b" and self.b_type is sa.String else "p.i"
            args.append(sa.ForeignKeyConstraint([col], [target]))
        t = sa.Table(TABLE, md, *args, comment=self.table_comment)
        for name, (col, unique) in self.indexes.items():
            sa.Index(name, t.c[col], unique=unique)
        if self.referenced_on is not None:
            col_type = t.c[self.referenced_on].type
            sa.Table(
                "k",
                md,
                sa.Column("x", col_type),
                sa.ForeignKeyConstraint(["x"], [f"{TABLE}.{self.referenced_on}"]),
            )
        return md

    def build(self, connection: sa.Connection) -> None:
        md = self.metadata()
        md.create_all(connection, checkfirst=False)
        b_value: object = "1" if self.b_type is sa.String else 1
        connection.execute(md.tables["p"].insert().values(i=1, s="1"))
        if not self.empty:
            connection.execute(md.tables[TABLE].insert().values(id=1, a=1, b=b_value, c=1))
            if self.referenced_on is not None:
                value = b_value if self.referenced_on == "b" else 1
                connection.execute(md.tables["k"].insert().values(x=value))
        if self.view_of is not None:
            connection.exec_driver_sql(f"CREATE VIEW v AS SELECT {', '.join(self.view_of)} FROM t")


@dataclass(frozen=True)
class Trait:
    name: str
    apply: Callable[[Shape], None]
    note: str = ""


def _pk(col: str) -> Callable[[Shape], None]:
    return lambda s: s.set_pk(col)


def _unique(col: str) -> Callable[[Shape], None]:
    return lambda s: s.uniques.add(col)


def _index(col: str) -> Callable[[Shape], None]:
    return lambda s: s.indexes.__setitem__(f"ix_t_{col}", (col, False))


def _fk(col: str) -> Callable[[Shape], None]:
    return lambda s: s.fks.add(col)


def _referenced(col: str) -> Callable[[Shape], None]:
    def apply(s: Shape) -> None:
        if col == "id":
            s.set_pk("id")
        else:
            s.uniques.add(col)
        s.referenced_on = col

    return apply


def _view(*cols: str) -> Callable[[Shape], None]:
    return lambda s: setattr(s, "view_of", cols)


def _both(*parts: Callable[[Shape], None]) -> Callable[[Shape], None]:
    def apply(s: Shape) -> None:
        for part in parts:
            part(s)

    return apply


def _plain(_: Shape) -> None:
    pass


# `b` is the column the column ops alter; a trait sits before it (on `a` or
# `id`), on it, or after it (on `c`).
TRAITS: list[Trait] = [
    Trait("plain", _plain),
    Trait("pk<b", _pk("id")),
    Trait("pk=b", _pk("b")),
    Trait("pk>b", _pk("c")),
    Trait("uq<b", _unique("a")),
    Trait("uq=b", _unique("b")),
    Trait("uq>b", _unique("c")),
    Trait("ix<b", _index("a")),
    Trait("ix=b", _index("b")),
    Trait("ix>b", _index("c")),
    Trait("fk<b", _fk("a")),
    Trait("fk=b", _fk("b")),
    Trait("fk>b", _fk("c")),
    Trait("ref<b", _referenced("id")),
    Trait("ref=b", _referenced("b")),
    Trait("view", _view("id", "a")),
    Trait("view=b", _view("b")),
    Trait("ck=b", lambda s: s.checks.add("b")),
    Trait("ref<b+ix<b", _both(_referenced("id"), _index("a"))),
    Trait("fk<b+uq>b", _both(_fk("a"), _unique("c"))),
]


@dataclass(frozen=True)
class Case:
    """One operation: how to prepare ``t``, the op, and how ``t`` must look afterwards."""

    name: str
    make: Callable[[sa.Inspector], alembic_ops.MigrateOperation]
    done: Callable[[sa.Inspector], bool]
    prepare: Callable[[Shape], None] = _plain
    b_type: type[sa.types.TypeEngine[Any]] = sa.String
    # DuckDB refuses some statements before it looks at the table: those are
    # measured on one table per kind of trait, not on every trait
    on: tuple[str, ...] | None = None


REFUSED_ANYWAY = ("plain", "pk=b", "uq=b", "ix=b", "fk=b", "ref<b", "view=b", "ck=b")


def _columns(insp: sa.Inspector) -> dict[str, Any]:
    return {c["name"]: c for c in insp.get_columns(TABLE)}


def _add(name: str, column: Callable[[], sa.Column[Any]]) -> Case:
    return Case(
        name,
        lambda _: alembic_ops.AddColumnOp(TABLE, column()),
        lambda i: "e" in _columns(i) and _columns(i)["e"]["nullable"] == column().nullable,
    )


def _drop(name: str, col: str) -> Case:
    return Case(
        name,
        lambda _: alembic_ops.DropColumnOp.from_column_and_tablename(
            None, TABLE, sa.Column(col, sa.String)
        ),
        lambda i: col not in _columns(i),
    )


def _alter(
    name: str,
    done: Callable[[dict[str, Any]], bool],
    prepare: Callable[[Shape], None] = _plain,
    b_type: type[sa.types.TypeEngine[Any]] = sa.String,
    **kw: Any,
) -> Case:
    return Case(
        name,
        lambda _: alembic_ops.AlterColumnOp(TABLE, "b", existing_type=b_type(), **kw),
        lambda i: done(_columns(i)),
        prepare,
        b_type,
    )


def _index_names(insp: sa.Inspector) -> set[str]:
    return {ix["name"] for ix in insp.get_indexes(TABLE) if ix["name"] is not None}


def _constraint_on_b(kind: str) -> Callable[[sa.Inspector], bool]:
    def present(insp: sa.Inspector) -> bool:
        if kind == "primary":
            return insp.get_pk_constraint(TABLE)["constrained_columns"] == ["b"]
        if kind == "unique":
            return any(u["column_names"] == ["b"] for u in insp.get_unique_constraints(TABLE))
        if kind == "foreignkey":
            return any(f["constrained_columns"] == ["b"] for f in insp.get_foreign_keys(TABLE))
        return any("b" in c["sqltext"] for c in insp.get_check_constraints(TABLE))

    return present


def _name_on_b(insp: sa.Inspector, kind: str) -> str:
    """DuckDB's own name for the constraint on ``b`` (it keeps no given names)."""
    if kind == "primary":
        name = insp.get_pk_constraint(TABLE)["name"]
    elif kind == "unique":
        name = next(
            u["name"] for u in insp.get_unique_constraints(TABLE) if u["column_names"] == ["b"]
        )
    elif kind == "foreignkey":
        name = next(
            f["name"] for f in insp.get_foreign_keys(TABLE) if f["constrained_columns"] == ["b"]
        )
    else:
        name = next(c["name"] for c in insp.get_check_constraints(TABLE) if "b" in c["sqltext"])
    assert name is not None
    return name


def _drop_constraint(name: str, kind: str, prepare: Callable[[Shape], None]) -> Case:
    present = _constraint_on_b(kind)
    return Case(
        name,
        lambda i: alembic_ops.DropConstraintOp(_name_on_b(i, kind), TABLE, type_=kind),
        lambda i: not present(i),
        prepare,
        on=REFUSED_ANYWAY,
    )


def _set_b(**kw: Any) -> Callable[[Shape], None]:
    def apply(shape: Shape) -> None:
        for key, value in kw.items():
            setattr(shape, key, value)

    return apply


CASES: list[Case] = [
    _add("add col nullable", lambda: sa.Column("e", sa.Integer)),
    _add(
        "add col NOT NULL DEFAULT",
        lambda: sa.Column("e", sa.Integer, nullable=False, server_default="0"),
    ),
    replace(
        _add("add col NOT NULL (empty)", lambda: sa.Column("e", sa.Integer, nullable=False)),
        prepare=_set_b(empty=True),
    ),
    replace(
        _add("add col FK", lambda: sa.Column("e", sa.Integer, sa.ForeignKey("p.i"))),
        on=REFUSED_ANYWAY,
    ),
    _add("add col UNIQUE", lambda: sa.Column("e", sa.Integer, unique=True)),
    _add("add col index=True", lambda: sa.Column("e", sa.Integer, index=True)),
    replace(
        _add("add col CHECK", lambda: sa.Column("e", sa.Integer, sa.CheckConstraint("e > 0"))),
        on=REFUSED_ANYWAY,
    ),
    Case(
        "add col PRIMARY KEY",
        lambda _: alembic_ops.AddColumnOp(TABLE, sa.Column("e", sa.String, primary_key=True)),
        lambda i: i.get_pk_constraint(TABLE)["constrained_columns"] == ["e"],
        _set_b(empty=True),
    ),
    _drop("drop col b (middle)", "b"),
    _drop("drop col c (last)", "c"),
    _drop("drop col a (first)", "a"),
    _alter("b SET NOT NULL", lambda c: not c["b"]["nullable"], modify_nullable=False),
    _alter(
        "b DROP NOT NULL",
        lambda c: c["b"]["nullable"],
        _set_b(b_nullable=False),
        modify_nullable=True,
    ),
    _alter(
        "b VARCHAR->INTEGER",
        lambda c: isinstance(c["b"]["type"], sa.Integer),
        modify_type=sa.Integer(),
    ),
    _alter(
        "b INTEGER->BIGINT",
        lambda c: isinstance(c["b"]["type"], sa.BigInteger),
        b_type=sa.Integer,
        modify_type=sa.BigInteger(),
    ),
    _alter("b SET DEFAULT", lambda c: "x" in str(c["b"]["default"]), modify_server_default="x"),
    _alter(
        "b change DEFAULT",
        lambda c: "y" in str(c["b"]["default"]),
        _set_b(b_default="'x'"),
        modify_server_default="y",
    ),
    _alter(
        "b DROP DEFAULT",
        lambda c: c["b"]["default"] is None,
        _set_b(b_default="'x'"),
        modify_server_default=None,
    ),
    _alter("b comment", lambda c: c["b"]["comment"] == "hi", modify_comment="hi"),
    _alter("rename b", lambda c: "b2" in c and "b" not in c, modify_name="b2"),
    Case(
        "table comment",
        lambda _: alembic_ops.CreateTableCommentOp(TABLE, "hi"),
        lambda i: i.get_table_comment(TABLE)["text"] == "hi",
    ),
    Case(
        "drop table comment",
        lambda _: alembic_ops.DropTableCommentOp(TABLE, existing_comment="hi"),
        lambda i: not i.get_table_comment(TABLE)["text"],
        _set_b(table_comment="hi"),
    ),
    Case(
        "create index b",
        lambda _: alembic_ops.CreateIndexOp("ix_new", TABLE, ["b"]),
        lambda i: "ix_new" in _index_names(i),
    ),
    Case(
        "drop index b",
        lambda _: alembic_ops.DropIndexOp("ix_old", TABLE),
        lambda i: "ix_old" not in _index_names(i),
        lambda s: s.indexes.__setitem__("ix_old", ("b", False)),
    ),
    Case(
        "create unique index b",
        lambda _: alembic_ops.CreateIndexOp("ix_new", TABLE, ["b"], unique=True),
        lambda i: "ix_new" in _index_names(i),
    ),
    Case(
        "drop unique index b",
        lambda _: alembic_ops.DropIndexOp("ix_old", TABLE),
        lambda i: "ix_old" not in _index_names(i),
        lambda s: s.indexes.__setitem__("ix_old", ("b", True)),
    ),
    Case(
        "add UNIQUE(b)",
        lambda _: alembic_ops.CreateUniqueConstraintOp("uq_new", TABLE, ["b"]),
        _constraint_on_b("unique"),
    ),
    _drop_constraint("drop UNIQUE(b)", "unique", _unique("b")),
    Case(
        "add PK(b)",
        lambda _: alembic_ops.CreatePrimaryKeyOp("pk_new", TABLE, ["b"]),
        _constraint_on_b("primary"),
    ),
    _drop_constraint("drop PK(b)", "primary", _pk("b")),
    Case(
        "add FK(b)",
        lambda _: alembic_ops.CreateForeignKeyOp("fk_new", TABLE, "p", ["b"], ["s"]),
        _constraint_on_b("foreignkey"),
        on=REFUSED_ANYWAY,
    ),
    _drop_constraint("drop FK(b)", "foreignkey", _fk("b")),
    Case(
        "add CHECK(b)",
        lambda _: alembic_ops.CreateCheckConstraintOp("ck_new", TABLE, "b IS NOT NULL"),
        _constraint_on_b("check"),
        on=REFUSED_ANYWAY,
    ),
    _drop_constraint("drop CHECK(b)", "check", lambda s: s.checks.add("b")),
]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""
    view_ok: bool | None = None  # whether the view still reads, when the trait has one

    def cell(self) -> str:
        text = "ok" if self.ok else self.error
        if self.view_ok is False:
            text += " (view broken)"
        return text


def shape_for(case: Case, trait: Trait) -> Shape:
    """The starting schema of a cell; raises NotApplicable."""
    shape = Shape(b_type=case.b_type)
    trait.apply(shape)
    case.prepare(shape)
    return shape


class _Statements(io.StringIO):
    """Collects what Alembic prints offline, one statement per write."""

    def __init__(self) -> None:
        super().__init__()
        self.statements: list[str] = []

    def write(self, text: str) -> int:
        self.statements.append(text.strip().removesuffix(";"))
        return len(text)


def rendered_sql(op: alembic_ops.MigrateOperation) -> list[str]:
    """The SQL Alembic and duckdb-sqlalchemy render for ``op`` (offline, no batch mode)."""
    buffer = _Statements()
    context = MigrationContext.configure(
        dialect_name="duckdb", opts={"as_sql": True, "output_buffer": buffer}
    )
    # duckdb-sqlalchemy's own impl: what DuckDB's ALTER is asked, with no rebuild
    # (EgregoraDuckDBImpl would write a rebuild where the ALTER can't run, or refuse)
    context.impl = DuckDBImpl(context.dialect, None, True, None, buffer, context.opts)
    Operations(context).invoke(op)
    return buffer.statements


def first_line(error: BaseException) -> str:
    cause = getattr(error, "orig", None) or error
    return str(cause).strip().splitlines()[0]


@dataclass(frozen=True)
class Result:
    op: alembic_ops.MigrateOperation
    table: sa.Table  # ``t`` as the metadata defines it before the op
    referenced: bool
    viewed: bool
    traits: TableTraits  # ``t`` as DuckDB's catalog has it before the op
    outcome: Outcome


def run_cell(
    case: Case, trait: Trait, url: str = "duckdb:///:memory:", mode: str = "raw"
) -> Result:
    """Build the cell's tables, run the op (``raw`` SQL or through the ``impl``), check ``t``."""
    shape = shape_for(case, trait)
    metadata = shape.metadata()
    engine = sa.create_engine(url, poolclass=sa.pool.StaticPool)
    try:
        with engine.begin() as connection:
            shape.build(connection)
        with engine.connect() as connection:
            op = case.make(sa.inspect(connection))
            traits = traits_from_database(connection, TABLE)
            connection.rollback()

            def result(outcome: Outcome) -> Result:
                return Result(
                    op,
                    metadata.tables[TABLE],
                    "k" in metadata.tables,
                    shape.view_of is not None,
                    traits,
                    outcome,
                )

            try:
                with connection.begin():
                    if mode == "raw":
                        for statement in rendered_sql(op):
                            connection.exec_driver_sql(statement)
                    else:
                        Operations(MigrationContext.configure(connection)).invoke(op)
            except (sa.exc.DBAPIError, duckdb.Error) as error:
                return result(Outcome(False, first_line(error)))
            ok = case.done(sa.inspect(connection))
            rows = connection.exec_driver_sql("SELECT count(*) FROM t").scalar()
            view_ok = None
            if shape.view_of is not None:
                try:
                    connection.exec_driver_sql("SELECT * FROM v").fetchall()
                    view_ok = True
                except sa.exc.DBAPIError:
                    view_ok = False
                    connection.rollback()
            if not ok or rows != (0 if shape.empty else 1):
                return result(Outcome(False, "ran, but t is not as intended", view_ok))
            return result(Outcome(True, view_ok=view_ok))
    finally:
        engine.dispose()


def cells() -> Iterator[tuple[Case, Trait]]:
    """Every applicable (op, trait) cell."""
    for case in CASES:
        for trait in TRAITS:
            if case.on is not None and trait.name not in case.on:
                continue
            try:
                shape_for(case, trait)
            except NotApplicable:
                continue
            yield case, trait


def _codes(*grids: dict[tuple[str, str], str]) -> dict[str, str]:
    """A short code for each distinct error, shared by the grids."""
    codes: dict[str, str] = {}
    for outcomes in grids:
        for text in outcomes.values():
            if not text.startswith("ok") and text not in codes:
                codes[text] = f"E{len(codes) + 1}"
    return codes


def _grid(title: str, outcomes: dict[tuple[str, str], str], codes: dict[str, str]) -> None:
    """Print op x trait, one code per cell."""
    traits = [t.name for t in TRAITS if any(k[1] == t.name for k in outcomes)]
    ops = list(dict.fromkeys(k[0] for k in outcomes))
    widths = [max(len(t), 3) + 1 for t in traits]
    print(
        f"\n{title}\n" + " " * 27 + "".join(t.rjust(w) for t, w in zip(traits, widths, strict=True))
    )
    for op in ops:
        row = []
        for trait, width in zip(traits, widths, strict=True):
            cell = outcomes.get((op, trait))
            if cell is None:
                code = "-"
            elif cell.startswith("ok"):
                code = "ok" if cell == "ok" else "ok*"
            else:
                code = codes[cell]
            row.append(code.rjust(width))
        print(f"{op:27}" + "".join(row))
    print(
        "ok* = ok, but the view over t no longer reads; - = not applicable, or refused"
        " whatever the table (measured on one table of each kind)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", action="store_true", help="also run through EgregoraDuckDBImpl")
    parser.add_argument("--op", help="only ops whose name contains this")
    parser.add_argument("--trait", help="only this trait")
    args = parser.parse_args()
    print(
        f"duckdb {duckdb.__version__}, sqlalchemy {sa.__version__}, alembic {alembic.__version__}"
    )
    raw: dict[tuple[str, str], str] = {}
    impl: dict[tuple[str, str], str] = {}
    disagreements = []
    for case, trait in cells():
        if args.op and args.op not in case.name or args.trait and args.trait != trait.name:
            continue
        result = run_cell(case, trait)
        raw[case.name, trait.name] = result.outcome.cell()
        rule, reason = duckdb_can_alter(result.op, result.traits, features())
        if rule != result.outcome.ok:
            disagreements.append(f"{case.name} | {trait.name}: rule says {rule} ({reason})")
        if args.impl:
            impl[case.name, trait.name] = run_cell(case, trait, mode="impl").outcome.cell()
    codes = _codes(raw, impl)
    _grid("raw: the SQL Alembic renders, executed", raw, codes)
    if args.impl:
        title = "impl: online through EgregoraDuckDBImpl (batch mode where it has indexes)"
        _grid(title, impl, codes)
    print()
    for text, code in codes.items():
        print(f"{code:>4} {text}")
    print(f"\n{len(raw)} cells; capabilities.duckdb_can_alter disagrees on {len(disagreements)}")
    for line in disagreements:
        print("  " + line)


if __name__ == "__main__":
    main()
