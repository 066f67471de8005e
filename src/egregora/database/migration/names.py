"""Constraint names on DuckDB: which constraint a name means, and which name to give back.

DuckDB keeps no constraint names. ``CONSTRAINT ck CHECK (y > 0)`` is stored
as ``<table>_<cols>_check``, a named UNIQUE as ``<table>_<cols>_key``, and
the stored ``CREATE TABLE`` text has no names at all (measured on DuckDB
2.0.1; two CHECKs on one column even share one name). Users still drop
constraints by name, so each constraint a table holds answers to the names
below, from the most to the least authoritative:

1. **recorded**: the name it was created with, when that name is none of
   the others (``egregora_constraint_names``, written by :mod:`.namerecord`
   when a table or constraint is created through this package). An entry
   counts only while the table holds a constraint that is what the entry
   says (same kind, columns, referenced table, expression), so DDL made
   outside Alembic leaves, at worst, entries that match nothing;
2. **history**: names this history gave before the record existed, that
   the naming convention can't derive (:data:`HISTORY_NAMES`);
3. **convention**: what the naming convention derives from the constraint
   itself (``pk_<table>``, ``uq_<table>_<cols>``,
   ``fk_<table>_<cols>_<referred table>``, and ``chk_<table>_<col>`` for a
   CHECK that reads one column: the name a column-level CHECK gets);
4. **engine**: DuckDB's own (``profiles_title_check``).

A name is looked up tier by tier; the first tier where it names exactly one
constraint wins. The first name of a constraint is the one reflection gives
back. Pure functions: no database here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from egregora.database.migration.catalog import ConstraintShape
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.sqltext import normalize_sql

CHECK, UNIQUE, PRIMARY_KEY, FOREIGN_KEY = "CHECK", "UNIQUE", "PRIMARY KEY", "FOREIGN KEY"

#: Alembic's ``type_`` (``op.drop_constraint(name, table, type_=...)``) -> the kind DuckDB reports
ALEMBIC_TYPES = {
    "check": CHECK,
    "unique": UNIQUE,
    "primary": PRIMARY_KEY,
    "foreignkey": FOREIGN_KEY,
}

#: The naming convention as this history has used it (schemas.NAMING_CONVENTION;
#: a test holds them equal). Frozen here: files made under it keep its names
#: even if the live convention changes.
CHECK_PREFIX = "chk_{table}_"
CONVENTION = {
    PRIMARY_KEY: "pk_{table}",
    UNIQUE: "uq_{table}_{columns}",
    FOREIGN_KEY: "fk_{table}_{columns}_{referred}",
    CHECK: CHECK_PREFIX + "{columns}",
}

#: (table, normalized expression) -> the name a revision gave a CHECK that the
#: convention can't derive, on files made before the record existed (frozen
#: history: v4a and v4b name them; a test checks them against PostgreSQL, which
#: keeps the names the revisions give).
HISTORY_NAMES: dict[tuple[str, str], str] = {
    ("journals", "window_end >= window_start"): "chk_journals_window_order",  # v4a
    ("profiles", "length(title) > 0"): "chk_profiles_title_not_empty",  # v4b
}


@dataclass(frozen=True)
class HeldConstraint:
    """A constraint as DuckDB holds it, with the name DuckDB made up for it."""

    shape: ConstraintShape
    engine_name: str


@dataclass(frozen=True)
class RecordedName:
    """A name the record keeps for the constraint of ``table`` that is ``shape``."""

    table: str
    name: str
    shape: ConstraintShape


@dataclass(frozen=True)
class NamedConstraint:
    """A held constraint and every name it answers to, tier by tier (see the module)."""

    held: HeldConstraint
    tiers: tuple[tuple[str, ...], ...]  # recorded, history, convention, engine

    @property
    def shape(self) -> ConstraintShape:
        return self.held.shape

    @property
    def name(self) -> str:
        """The name reflection gives back: the most authoritative one."""
        return self.names[0]

    @property
    def names(self) -> tuple[str, ...]:
        """Every name it answers to, most authoritative first, each once."""
        return tuple(dict.fromkeys(n for tier in self.tiers for n in tier))


def signature(shape: ConstraintShape) -> tuple[object, ...]:
    """What a constraint is, whatever its name: a CHECK is its expression."""
    if shape.kind == CHECK:
        return (CHECK, shape.expression)
    return (shape.kind, shape.columns, shape.referenced_table, shape.referenced_columns)


def convention_name(table: str, shape: ConstraintShape) -> str | None:
    """The naming convention's name for a constraint, or None (a CHECK over several columns)."""
    if shape.kind == CHECK and len(shape.columns) != 1:
        return None
    pattern = CONVENTION.get(shape.kind)
    if pattern is None:
        return None
    return pattern.format(
        table=table, columns="_".join(shape.columns), referred=shape.referenced_table
    )


def history_name(table: str, shape: ConstraintShape) -> str | None:
    """The name a revision gave this constraint before names were recorded, if any."""
    if shape.kind != CHECK or shape.expression is None:
        return None
    return HISTORY_NAMES.get((table, normalize_sql(shape.expression)))


def default_name(table: str, shape: ConstraintShape) -> str | None:
    """The name a constraint gets back without a record (None: DuckDB's own)."""
    return history_name(table, shape) or convention_name(table, shape)


def needs_record(table: str, shape: ConstraintShape, name: str | None) -> bool:
    """Whether ``name`` must be recorded for the constraint to be given back under it."""
    return name is not None and name != default_name(table, shape)


def named_constraints(
    table: str, held: Sequence[HeldConstraint], recorded: Iterable[RecordedName] = ()
) -> list[NamedConstraint]:
    """The constraints ``table`` holds, each with the names it answers to."""
    by_signature: dict[tuple[object, ...], list[str]] = {}
    for entry in recorded:
        if entry.table == table:
            by_signature.setdefault(signature(entry.shape), []).append(entry.name)
    seen: dict[str, int] = {}
    found = []
    for constraint in held:
        history, convention = (
            history_name(table, constraint.shape),
            convention_name(table, constraint.shape),
        )
        tiers = (
            tuple(by_signature.get(signature(constraint.shape), ())),
            (history,) if history else (),
            _numbered(convention, seen) if convention else (),
            _numbered(constraint.engine_name, seen),
        )
        found.append(NamedConstraint(constraint, tiers))
    return found


def _numbered(name: str, seen: dict[str, int]) -> tuple[str]:
    """``name``, or ``name_2``, ``name_3``... for the next constraints that would share it.

    Two CHECKs over one column get one name from DuckDB (``t_y_check``) and
    from the convention (``chk_t_y``); numbered in DuckDB's order, as the
    convention numbers a column's CHECKs (schemas.check_name), each has one
    of its own.
    """
    seen[name] = seen.get(name, 0) + 1
    return (name if seen[name] == 1 else f"{name}_{seen[name]}",)


def resolve(
    table: str,
    held: Sequence[HeldConstraint],
    name: str,
    type_: str | None = None,
    recorded: Iterable[RecordedName] = (),
) -> NamedConstraint:
    """The constraint of ``table`` that ``name`` (and Alembic's ``type_``) means.

    A CHECK may also be named without the convention's ``chk_<table>_``
    (``title_not_empty``). Refused with one paragraph listing the table's
    constraints under the names they answer to when the name means none, or
    more than one.
    """
    kind = _kind(type_)
    every = named_constraints(table, held, recorded)
    candidates = [c for c in every if kind is None or c.shape.kind == kind]
    for wanted in _spellings(table, name, kind):
        for tier in range(4):
            matches = [c for c in candidates if wanted in c.tiers[tier]]
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise InvalidOperation(_ambiguous(table, name, matches, every))
    raise InvalidOperation(_unknown(table, name, kind, every))


def _kind(type_: str | None) -> str | None:
    if type_ is None:
        return None
    kind = ALEMBIC_TYPES.get(type_)
    if kind is None:
        raise InvalidOperation(
            f"Unknown constraint type_={type_!r}. Alembic's types are "
            f"{', '.join(repr(t) for t in ALEMBIC_TYPES)}; give one of them, or none."
        )
    return kind


def _spellings(table: str, name: str, kind: str | None) -> list[str]:
    """``name`` as given, then as the convention would complete a CHECK's short name."""
    prefix = CHECK_PREFIX.format(table=table)
    if kind in (None, CHECK) and not name.startswith(prefix):
        return [name, prefix + name]
    return [name]


def describe(constraint: NamedConstraint) -> str:
    """``CHECK (length(title) > 0) as chk_profiles_title_not_empty (or profiles_title_check)``."""
    first, *others = constraint.names
    also = f" (or {', '.join(others)})" if others else ""
    return f"{constraint.shape.describe()} as {first}{also}"


def _listing(table: str, every: Sequence[NamedConstraint]) -> str:
    if not every:
        return f"Table {table} has no constraints."
    return f"Table {table} has: " + "; ".join(describe(c) for c in every) + "."


def _unknown(table: str, name: str, kind: str | None, every: Sequence[NamedConstraint]) -> str:
    what = f"{kind} constraint" if kind else "constraint"
    other = [c for c in every if name in c.names and c.shape.kind != kind]
    hint = f" {name} is a {other[0].shape.kind}, not a {kind}." if other else ""
    return (
        f"No {what} of table {table} is named {name}.{hint} DuckDB keeps no constraint "
        f"names, so a constraint answers to the names this schema gives it. "
        f"{_listing(table, every)} Name one of these (and its type_), then run the "
        "command again. Nothing was changed."
    )


def _ambiguous(
    table: str, name: str, matches: Sequence[NamedConstraint], every: Sequence[NamedConstraint]
) -> str:
    return (
        f"The name {name} means {len(matches)} constraints of table {table} "
        f"({'; '.join(m.shape.describe() for m in matches)}): DuckDB keeps no constraint "
        f"names, and these answer to the same one. {_listing(table, every)} Name the one "
        "you mean by another of its names, then run the command again. Nothing was changed."
    )
