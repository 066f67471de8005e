"""What DuckDB's ``ALTER TABLE`` can do, as data: one rule per measured error.

Measured on DuckDB 2.0.1 and 1.4.3 by ``benchmarks/measure_alter.py``, which
runs every plain op Alembic autogenerate emits on tables of every shape; each
rule below quotes the error DuckDB gave. ``tests/migration/test_capabilities.py``
re-runs the same cells and checks this module against them on the DuckDB it
runs on, so a DuckDB upgrade that changes a rule fails there. Where 1.4 and
2.0 differ, the rules ask an :class:`DuckDBFeatures`
(:mod:`egregora.database.migration.duckdb_versions` says what differs);
autogenerate asks with ``PORTABLE``, what every supported DuckDB does.

The answers are about DuckDB's capability only: an op answered ``True`` can
still fail on the rows (``SET NOT NULL`` over NULLs, a UNIQUE over
duplicates, a type change over values that don't convert). Views don't
appear in any rule: DuckDB binds them late, so it never refuses an ALTER for
a view, and a view that reads a dropped or renamed column breaks afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import sqlalchemy as sa
from alembic.operations import ops

from egregora.database.migration.duckdb_versions import PORTABLE, DuckDBFeatures

OK = "DuckDB's ALTER does it"


@dataclass(frozen=True)
class TableTraits:
    """What decides whether DuckDB can ALTER a table.

    ``referenced``: another table's FOREIGN KEY points at it (DuckDB makes no
    difference between a self-reference and another table's, so neither does
    this). ``indexed_columns``: columns read by explicit indexes (``CREATE
    INDEX``), not those of PRIMARY KEY/UNIQUE/FOREIGN KEY, which are
    ``keyed``. The fields after ``viewed`` refine ``keyed`` for the rules
    that depend on the kind of key; the constructors fill them.
    """

    referenced: bool
    indexed_columns: frozenset[str]
    column_order: tuple[str, ...]
    keyed: frozenset[str]
    has_pk: bool
    has_fk: bool
    has_unique: bool
    viewed: bool = False
    pk_columns: frozenset[str] = frozenset()
    fk_columns: frozenset[str] = frozenset()
    unique_sets: frozenset[frozenset[str]] = frozenset()
    checked_columns: frozenset[str] = frozenset()

    @property
    def blocked(self) -> bool:
        """Whether DuckDB refuses to rewrite the table's catalog entry at all."""
        return self.referenced or bool(self.indexed_columns)


PLAIN = TableTraits(False, frozenset(), (), frozenset(), False, False, False)

# DuckDB's refusal for any ALTER that rewrites the table's catalog entry
# while an explicit index or a referencing FOREIGN KEY depends on it.
_DEPENDS = 'explicit index or referencing FOREIGN KEY: "Cannot alter entry ... depend on it"'


def duckdb_can_alter(
    op: ops.MigrateOperation, traits: TableTraits, support: DuckDBFeatures = PORTABLE
) -> tuple[bool, str]:
    """Whether DuckDB's ALTER does ``op`` on a table with these ``traits``, and why.

    ``support``: which DuckDB; by default, every supported one. ``ModifyTableOps``
    is answered op by op, each against the table as the earlier ones leave it.
    """
    if isinstance(op, ops.ModifyTableOps):
        for sub in op.ops:
            can, reason = duckdb_can_alter(sub, traits, support)
            if not can:
                return False, reason
            traits = _after(sub, traits)
        return True, OK
    for kinds, answer in _SAME_ON_EVERY_TABLE:
        if isinstance(op, kinds):
            return answer
    if isinstance(op, ops.AddColumnOp):
        return _add_column(op.column, traits, support)
    if isinstance(op, ops.DropColumnOp):
        return _drop_column(op.column_name, traits)
    if isinstance(op, ops.AlterColumnOp):
        return _alter_column(op, traits, support)
    if isinstance(op, ops.CreateUniqueConstraintOp):
        return _add_unique(frozenset(op.columns), traits, support)
    if isinstance(op, ops.CreatePrimaryKeyOp):
        return _add_primary_key(traits)
    return False, f"not measured: {type(op).__name__}"


#: ops that DuckDB does, or refuses, whatever the table
_SAME_ON_EVERY_TABLE: tuple[
    tuple[tuple[type[ops.MigrateOperation], ...], tuple[bool, str]], ...
] = (
    # COMMENT ON TABLE, CREATE/DROP [UNIQUE] INDEX: ok on every measured table
    ((ops.CreateTableCommentOp, ops.DropTableCommentOp), (True, OK)),
    ((ops.CreateIndexOp, ops.DropIndexOp), (True, OK)),
    (
        (ops.CreateForeignKeyOp,),
        (False, 'Not implemented: "No support for adding FOREIGN_KEY constraints"'),
    ),
    (
        (ops.CreateCheckConstraintOp,),
        (False, 'Not implemented: "No support for adding CHECK constraints"'),
    ),
    # every kind, every table: "No support for that ALTER TABLE option yet!"
    ((ops.DropConstraintOp,), (False, "Not implemented: DROP CONSTRAINT")),
)


def _add_primary_key(traits: TableTraits) -> tuple[bool, str]:
    if traits.has_pk:
        return False, 'has a PRIMARY KEY: "can have only one primary key"'
    if traits.blocked:
        return False, _DEPENDS
    return True, OK


# DuckDB 1.4's refusal of ADD COLUMN with NOT NULL or UNIQUE (2.0 does it)
_CONSTRAINED_1_4 = 'DuckDB 1.4: "Adding columns with constraints not yet supported"'


def _add_column(
    column: sa.Column[object], traits: TableTraits, support: DuckDBFeatures
) -> tuple[bool, str]:
    if column.computed is not None:
        return (
            False,
            'Parser Error: "Adding generated columns after table creation is not supported"',
        )
    if column.foreign_keys:
        # Alembic adds the column, then ADD CONSTRAINT ... FOREIGN KEY
        return False, 'Not implemented: "No support for adding FOREIGN_KEY constraints"'
    if any(isinstance(c, sa.CheckConstraint) for c in column.constraints):
        return False, 'Parser Error: "Adding columns with CHECK constraints is not supported"'
    if column.primary_key:
        # Alembic's add_column leaves a PRIMARY KEY out: the column is added unkeyed
        return False, "ADD COLUMN does not add a PRIMARY KEY"
    if (not column.nullable or column.unique) and not support.constrained_column:
        return False, _CONSTRAINED_1_4
    if not column.nullable and traits.blocked:
        return False, f"NOT NULL (with or without DEFAULT): {_DEPENDS}"
    if column.unique:
        return _add_unique(frozenset([column.name]), traits, support)
    return True, OK  # nullable ADD COLUMN: ok on every measured table


def _add_unique(
    columns: frozenset[str], traits: TableTraits, support: DuckDBFeatures
) -> tuple[bool, str]:
    if not support.add_unique:
        return False, 'DuckDB 1.4: ADD UNIQUE: "No support for that ALTER TABLE option yet!"'
    if columns in traits.unique_sets:
        return False, 'already UNIQUE: "already has the constraint UNIQUE(...)"'
    if traits.blocked:
        return False, _DEPENDS
    return True, OK


def _drop_column(name: str, traits: TableTraits) -> tuple[bool, str]:
    if traits.referenced:
        return False, _DEPENDS
    if name in traits.indexed_columns:
        return False, 'indexed: "Cannot drop this column: an index depends on it!"'
    if traits.indexed_columns:
        # an index on a later column: "an index depends on a column after it";
        # on an earlier one: "Cannot alter entry ... depend on it"
        return False, f"another column is indexed: {_DEPENDS}"
    if name in traits.pk_columns:
        return False, 'in the PRIMARY KEY: "referenced in primary key constraint"'
    if name in traits.fk_columns:
        return False, 'in a FOREIGN KEY: "there is a FOREIGN KEY constraint that depends on it"'
    if name in traits.keyed:
        return False, 'UNIQUE: "referenced in unique constraint"'
    later = _after_column(name, traits.column_order)
    if traits.keyed & later:
        # PRIMARY KEY, UNIQUE and FOREIGN KEY columns carry an index of their own
        return False, 'a later column is keyed: "an index depends on a column after it!"'
    # ok; a CHECK on the column is dropped with it, a view reading it breaks
    return True, OK


def _after_column(name: str, order: tuple[str, ...]) -> frozenset[str]:
    """The columns after ``name``; all of them when the order does not know it."""
    if name not in order:
        return frozenset(order)
    return frozenset(order[order.index(name) + 1 :])


def _alter_column(
    op: ops.AlterColumnOp, traits: TableTraits, support: DuckDBFeatures
) -> tuple[bool, str]:
    """Each part of an ALTER COLUMN in turn: the first refused one answers."""
    # COMMENT ON COLUMN: ok on every measured table; SET/DROP DEFAULT too on 2.0
    changes_default = op.modify_server_default is not False  # False: left as it is
    if changes_default and traits.blocked and not support.default_on_depended_table:
        return False, f"DuckDB 1.4: SET/DROP DEFAULT: {_DEPENDS}"
    name = op.column_name
    if op.modify_nullable is not None:
        if traits.blocked:
            return False, f"SET/DROP NOT NULL: {_DEPENDS}"
        if op.modify_nullable and name in traits.pk_columns:
            return False, 'DROP NOT NULL: "column ... is in a primary key"'
    if op.modify_type is not None:
        can, why = _alter_type(name, traits)
        if not can:
            return can, why
    if op.modify_name is not None:
        if traits.blocked:
            return False, f"RENAME COLUMN: {_DEPENDS}"
        if name in traits.fk_columns:
            return False, 'RENAME COLUMN: "involved in the foreign key constraint"'
    return True, OK


def _alter_type(name: str, traits: TableTraits) -> tuple[bool, str]:
    if name in traits.indexed_columns:
        return False, 'type: "Cannot change the type of this column: an index depends on it!"'
    if traits.blocked:
        return False, f"type: {_DEPENDS}"
    if name in traits.fk_columns:
        return False, 'type: "Cannot change the type of a column that has a FOREIGN KEY"'
    if name in traits.keyed:
        return False, 'type: "... that has a UNIQUE or PRIMARY KEY constraint specified"'
    if name in traits.checked_columns:
        return False, 'type: "... that has a CHECK constraint specified"'
    return True, OK


def _after(op: ops.MigrateOperation, traits: TableTraits) -> TableTraits:
    """The traits once ``op`` has run, where later rules depend on it.

    A dropped index still counts, to be safe: after DROP INDEX in the same
    transaction DuckDB 2.0.1 still refuses to drop or retype the columns the
    index read (and to drop columns before them), and a ``DropIndexOp`` does
    not say which columns those were.
    """
    if isinstance(op, ops.CreateIndexOp):
        columns = {c for c in op.columns if isinstance(c, str)} or set(traits.column_order)
        return replace(traits, indexed_columns=traits.indexed_columns | columns)
    if isinstance(op, ops.AddColumnOp):
        uniques = {frozenset([op.column.name])} if op.column.unique else set()
        return replace(
            traits,
            column_order=(*traits.column_order, op.column.name),
            keyed=traits.keyed | ({op.column.name} if op.column.unique else set()),
            unique_sets=traits.unique_sets | uniques,
            has_unique=traits.has_unique or bool(uniques),
            indexed_columns=traits.indexed_columns
            | ({op.column.name} if op.column.index else set()),
        )
    if isinstance(op, ops.CreateUniqueConstraintOp):
        return replace(
            traits,
            keyed=traits.keyed | set(op.columns),
            unique_sets=traits.unique_sets | {frozenset(op.columns)},
            has_unique=True,
        )
    if isinstance(op, ops.CreatePrimaryKeyOp):
        return replace(
            traits,
            keyed=traits.keyed | set(op.columns),
            pk_columns=frozenset(op.columns),
            has_pk=True,
        )
    return traits


def traits_from_table(table: sa.Table, referenced: bool) -> TableTraits:
    """The traits of ``table`` as the metadata defines it (it knows no views)."""
    pk = frozenset(c.name for c in table.primary_key.columns)
    fk = frozenset(c.name for f in table.foreign_key_constraints for c in f.columns)
    uniques = [
        frozenset(c.name for c in u.columns)
        for u in table.constraints
        if isinstance(u, sa.UniqueConstraint) and not isinstance(u, sa.PrimaryKeyConstraint)
    ]
    uniques += [frozenset([c.name]) for c in table.columns if c.unique]
    checked = {
        name
        for check in table.constraints
        if isinstance(check, sa.CheckConstraint)
        for name in _columns_read(check, table)
    }
    return TableTraits(
        referenced=referenced,
        indexed_columns=frozenset(c.name for index in table.indexes for c in index.columns)
        | frozenset(c.name for c in table.columns if c.index),
        column_order=tuple(c.name for c in table.columns),
        keyed=pk | fk | frozenset().union(*uniques),
        has_pk=bool(pk),
        has_fk=bool(fk),
        has_unique=bool(uniques),
        pk_columns=pk,
        fk_columns=fk,
        unique_sets=frozenset(uniques),
        checked_columns=frozenset(checked),
    )


def _columns_read(check: sa.CheckConstraint, table: sa.Table) -> set[str]:
    """The names of the table's columns a CHECK reads, from its expression or its text."""
    names = {
        e.name for e in sa.sql.visitors.iterate(check.sqltext) if isinstance(e, sa.ColumnClause)
    }
    names |= _identifiers(str(check.sqltext))
    return {c.name for c in table.columns if c.name in names or c.name.lower() in names}


_IDENTIFIER = re.compile(r'"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_$]*)')


def _identifiers(sql: str) -> set[str]:
    """Identifiers in a piece of SQL: quoted ones verbatim, bare ones lower-cased."""
    return {
        quoted.replace('""', '"') if quoted else bare.lower()
        for quoted, bare in _IDENTIFIER.findall(sql)
    }


_SCOPE = "database_name = current_database() AND schema_name = current_schema()"

# One round trip: each catalog function is cheap, each statement through the
# dialect is not (autogenerate asks this for every table it changes).
_CATALOG = sa.text(
    f"""
    SELECT
      (SELECT list(column_name ORDER BY column_index) FROM duckdb_columns()
        WHERE {_SCOPE} AND table_name = :name),
      (SELECT list(struct_pack(kind := constraint_type, names := constraint_column_names))
        FROM duckdb_constraints() WHERE {_SCOPE} AND table_name = :name),
      (SELECT count(*) FROM duckdb_constraints()
        WHERE {_SCOPE} AND constraint_type = 'FOREIGN KEY' AND referenced_table = :name),
      (SELECT list(expressions) FROM duckdb_indexes() WHERE {_SCOPE} AND table_name = :name),
      (SELECT list(sql) FROM duckdb_views() WHERE {_SCOPE} AND NOT internal)
    """
)


def traits_from_database(connection: sa.Connection, name: str) -> TableTraits:
    """The traits of table ``name`` in the current DuckDB schema, from DuckDB's catalog.

    A table that does not exist (yet) has the traits of a plain table.
    """
    row = connection.execute(_CATALOG, {"name": name}).one()
    columns: tuple[str, ...] = tuple(row[0] or ())
    if not columns:
        return PLAIN
    keys: dict[str, set[str]] = {"PRIMARY KEY": set(), "FOREIGN KEY": set(), "CHECK": set()}
    uniques: set[frozenset[str]] = set()
    for constraint in row[1] or ():
        if constraint["kind"] == "UNIQUE":
            uniques.add(frozenset(constraint["names"]))
        elif constraint["kind"] in keys:
            keys[constraint["kind"]].update(constraint["names"])
    referenced = row[2]
    indexed: set[str] = set()
    for expressions in row[3] or ():
        # expressions is text such as ['"B c"', '(lower(e))']: find the column names in it
        read = _identifiers(str(expressions))
        indexed.update(c for c in columns if c in read or c.lower() in read)
        if not read & {*columns, *(c.lower() for c in columns)}:
            indexed.update(columns)  # no column recognised: assume it reads them all
    views: list[str] = row[4] or []
    unique_columns = frozenset().union(*uniques)
    return TableTraits(
        referenced=bool(referenced),
        indexed_columns=frozenset(indexed),
        column_order=columns,
        keyed=frozenset(keys["PRIMARY KEY"] | keys["FOREIGN KEY"]) | unique_columns,
        has_pk=bool(keys["PRIMARY KEY"]),
        has_fk=bool(keys["FOREIGN KEY"]),
        has_unique=bool(uniques),
        viewed=any(name in _identifiers(sql) or name.lower() in _identifiers(sql) for sql in views),
        pk_columns=frozenset(keys["PRIMARY KEY"]),
        fk_columns=frozenset(keys["FOREIGN KEY"]),
        unique_sets=frozenset(uniques),
        checked_columns=frozenset(keys["CHECK"]),
    )
