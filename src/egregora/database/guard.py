"""An opt-in guard that keeps a SQLAlchemy engine from rewriting append-only tables.

The append-only tables (``Table.info[APPEND_ONLY]`` in :mod:`egregora.database.schemas`:
journals and annotations) take new rows and never change or lose old ones; a change
is a new row, a new version. PostgreSQL enforces that in the database, with triggers.
DuckDB has no triggers, so an application on DuckDB can install this guard on its
engine (or on one connection)::

    engine = sa.create_engine("duckdb:///egregora.duckdb")
    install_append_only_guard(engine)

It is a ``before_cursor_execute`` listener: it reads each SQL string just before it
goes to the driver, Core constructs and text SQL alike, and raises
:class:`AppendOnlyViolation` instead of sending an UPDATE, DELETE, TRUNCATE,
``INSERT OR REPLACE``, ``INSERT ... ON CONFLICT DO UPDATE`` or a MERGE that updates
or deletes, aimed at an append-only table. Plain INSERTs, reads, and any statement on
another table pass. DDL (DROP TABLE, ALTER TABLE, CREATE OR REPLACE TABLE) is not
its business: schema changes belong to migrations, which don't install the guard.

What it is not: it sees only statements sent through the engine or connection it is
installed on. The raw DuckDB connection (``driver_connection``), another engine,
another process and the duckdb CLI all bypass it, and any caller may opt out with
``execution_options(egregora_allow_rewrite=True)``. It guards against mistakes; it
is not a security boundary. The statement check is lexical (comments and string
literals are skipped, identifiers are matched), not a full SQL parser.

No Alembic here: the application imports this module at run time.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, Final, TypeAlias

import sqlalchemy as sa

from egregora.database import schemas

#: The execution option that lets a statement through the guard.
ALLOW_REWRITE: Final = "egregora_allow_rewrite"

_EVENT: Final = "before_cursor_execute"


class AppendOnlyViolation(sa.exc.InvalidRequestError):
    """A statement would change or delete rows of an append-only table; it was not sent."""

    def __init__(self, verb: str, table: str) -> None:
        self.verb = verb
        self.table = table
        super().__init__(
            f"Refused: {verb} on {table}, an append-only table (its rows are never changed "
            "or deleted; a change is a new row, a new version). Insert a new row instead, "
            "with a plain INSERT. Nothing was executed: the statement was not sent to the "
            "database. (Migrations, which may rewrite rows, don't install this guard; a "
            f"connection or statement can opt out with execution_options({ALLOW_REWRITE}=True).)"
        )

    def __reduce__(self) -> tuple[type[AppendOnlyViolation], tuple[str, str]]:
        return type(self), (self.verb, self.table)


def append_only_tables(metadata: sa.MetaData = schemas.metadata) -> frozenset[str]:
    """Names of the tables of ``metadata`` whose ``info`` marks them append-only."""
    return frozenset(
        table.name for table in metadata.tables.values() if table.info.get(schemas.APPEND_ONLY)
    )


# --- the statement check ---------------------------------------------------------------

_WORD: Final = "word"  # a bare word: keyword or identifier, upper-cased
_QUOTED: Final = "quoted"  # a double-quoted identifier, unescaped
_PUNCT: Final = "punct"  # one character of punctuation
_LITERAL: Final = "literal"  # a string or number literal, value dropped

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<escape_string>[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z))
    | (?P<string>'(?:[^']|'')*(?:'|\Z))
    | (?P<dollar_string>\$(?P<tag>[A-Za-z_]\w*)?\$)
    | (?P<quoted>"(?:[^"]|"")*(?:"|\Z))
    | (?P<word>[^\W\d]\w*)
    | (?P<number>\d[\w.]*)
    | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_VERBS = re.compile(r"update|delete|truncate|insert|merge", re.IGNORECASE)

Token: TypeAlias = tuple[str, str]


def _skip_block_comment(sql: str, pos: int) -> int:
    """The end of the ``/* ... */`` comment whose body starts at ``pos``; they nest."""
    depth = 1
    while depth and pos < len(sql):
        if sql.startswith("/*", pos):
            depth, pos = depth + 1, pos + 2
        elif sql.startswith("*/", pos):
            depth, pos = depth - 1, pos + 2
        else:
            pos += 1
    return pos


def _tokens(sql: str) -> list[Token]:
    """Words, quoted identifiers and punctuation of ``sql``; no comments, no literal text."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        assert match is not None  # the last alternative matches any character
        kind, pos = match.lastgroup, match.end()
        if kind == "block_comment":
            pos = _skip_block_comment(sql, pos)
        elif kind == "dollar_string":
            end = sql.find(match.group(), pos)
            pos = len(sql) if end < 0 else end + len(match.group())
            tokens.append((_LITERAL, ""))
        elif kind in ("escape_string", "string", "number"):
            tokens.append((_LITERAL, ""))
        elif kind == "quoted":
            text = match.group()
            body = text[1:-1] if len(text) > 1 and text.endswith('"') else text[1:]
            tokens.append((_QUOTED, body.replace('""', '"')))
        elif kind == "word":
            tokens.append((_WORD, match.group().upper()))
        elif kind == "punct":
            tokens.append((_PUNCT, match.group()))
    return tokens


def _depths(tokens: list[Token]) -> list[int]:
    """Each token's parenthesis depth; a parenthesis has the depth outside it."""
    depths, depth = [], 0
    for token in tokens:
        if token == (_PUNCT, ")"):
            depth -= 1
        depths.append(depth)
        if token == (_PUNCT, "("):
            depth += 1
    return depths


def _is_word(tokens: list[Token], i: int, *words: str) -> bool:
    return i < len(tokens) and tokens[i][0] == _WORD and tokens[i][1] in words


def _name(tokens: list[Token], i: int) -> tuple[str | None, int]:
    """The last part of the (dotted) name at ``i``, case-folded, and the index after it."""
    last: str | None = None
    while i < len(tokens) and tokens[i][0] in (_WORD, _QUOTED):
        last = tokens[i][1].casefold()
        if tokens[i + 1 : i + 2] != [(_PUNCT, ".")]:
            return last, i + 1
        i += 2
    return last, i


def _followed_at_depth(
    tokens: list[Token], depths: list[int], start: int, first: str, then: tuple[str, ...]
) -> bool:
    """Whether ``first`` then one of ``then`` follow ``start`` within its statement."""
    depth = depths[start - 1]
    for i in range(start, len(tokens)):
        if depths[i] < depth or tokens[i] == (_PUNCT, ";"):
            return False
        if depths[i] == depth and _is_word(tokens, i, first) and _is_word(tokens, i + 1, *then):
            return True
    return False


@lru_cache(maxsize=1024)
def _check(statement: str, tables: frozenset[str]) -> tuple[str, str] | None:
    scanner = _Scanner(_tokens(statement), tables)
    for i, (kind, word) in enumerate(scanner.tokens):
        verb = _VERB_SCANS.get(word) if kind == _WORD else None
        found = verb(scanner, i) if verb is not None else None
        if found is not None:
            return found
    return None


class _Scanner:
    """The tokens of one statement, and what each changing verb at ``i`` aims at."""

    def __init__(self, tokens: list[tuple[str, str]], tables: frozenset[str]) -> None:
        self.tokens = tokens
        self.depths = _depths(tokens)
        self.names = {table.casefold(): table for table in tables}

    def target(self, i: int) -> tuple[str | None, int]:
        """The append-only table named at ``i`` (after an optional ONLY), and the index after."""
        if _is_word(self.tokens, i, "ONLY") and self.tokens[i + 1 : i + 2] != [(_PUNCT, ".")]:
            i += 1  # ONLY the table, not a schema named only
        name, after = _name(self.tokens, i)
        return self.names.get(name) if name is not None else None, after

    def update(self, i: int) -> tuple[str, str] | None:
        table, _ = self.target(i + 1)
        return ("UPDATE", table) if table else None

    def delete(self, i: int) -> tuple[str, str] | None:
        if not _is_word(self.tokens, i + 1, "FROM"):
            return None
        table, _ = self.target(i + 2)
        return ("DELETE", table) if table else None

    def truncate(self, i: int) -> tuple[str, str] | None:
        j = i + 2 if _is_word(self.tokens, i + 1, "TABLE") else i + 1
        while True:  # TRUNCATE a, ONLY b *, c
            table, j = self.target(j)
            if table:
                return "TRUNCATE", table
            if self.tokens[j : j + 1] == [(_PUNCT, "*")]:
                j += 1
            if self.tokens[j : j + 1] != [(_PUNCT, ",")]:
                return None
            j += 1

    def insert(self, i: int) -> tuple[str, str] | None:
        tokens = self.tokens
        replace = _is_word(tokens, i + 1, "OR") and _is_word(tokens, i + 2, "REPLACE")
        j = i + 3 if _is_word(tokens, i + 1, "OR") else i + 1
        if not _is_word(tokens, j, "INTO"):
            return None
        table, after = self.target(j + 1)
        if not table:
            return None
        if replace:
            return "INSERT OR REPLACE", table
        if _followed_at_depth(tokens, self.depths, after, "DO", ("UPDATE",)):
            return "INSERT ... ON CONFLICT DO UPDATE", table
        return None

    def merge(self, i: int) -> tuple[str, str] | None:
        if not _is_word(self.tokens, i + 1, "INTO"):
            return None
        table, after = self.target(i + 2)
        changes = _followed_at_depth(self.tokens, self.depths, after, "THEN", ("UPDATE", "DELETE"))
        return ("MERGE", table) if table and changes else None


#: The verbs that change rows, and how each finds the table it changes.
_VERB_SCANS = {
    "UPDATE": _Scanner.update,
    "DELETE": _Scanner.delete,
    "TRUNCATE": _Scanner.truncate,
    "INSERT": _Scanner.insert,
    "MERGE": _Scanner.merge,
}


def changed_append_only_table(statement: str, tables: frozenset[str]) -> tuple[str, str] | None:
    """``(verb, table)`` of the first part of ``statement`` that would change rows of one of
    ``tables``, else None.

    Catches ``UPDATE [ONLY] t``, ``DELETE FROM [ONLY] t``, ``TRUNCATE [TABLE] [ONLY] t, ...``,
    ``INSERT OR REPLACE INTO t``, ``INSERT INTO t ... ON CONFLICT ... DO UPDATE`` and
    ``MERGE INTO t ... THEN UPDATE|DELETE``, also inside CTEs and after other statements.
    ``t`` may be quoted and schema-qualified; its last part is compared case-insensitively,
    quoted or not, as DuckDB resolves names. Comments and string literals are skipped.
    The returned table is spelled as in ``tables``.
    """
    if not tables or not _VERBS.search(statement):
        return None
    lowered = statement.casefold()
    if all('"' not in table and table.casefold() not in lowered for table in tables):
        return None
    return _check(statement, tables)


# --- installing it -----------------------------------------------------------------------

_Listener: TypeAlias = Callable[..., None]
_installed: weakref.WeakKeyDictionary[sa.Engine | sa.Connection, _Listener] = (
    weakref.WeakKeyDictionary()
)


def _allows_rewrite(conn: sa.Connection, context: Any) -> bool:
    options = context.execution_options if context is not None else {}
    return bool(options.get(ALLOW_REWRITE) or conn.get_execution_options().get(ALLOW_REWRITE))


def _listener(tables: frozenset[str]) -> _Listener:
    def refuse_append_only_rewrites(
        conn: sa.Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        found = changed_append_only_table(statement, tables)
        if found is not None and not _allows_rewrite(conn, context):
            raise AppendOnlyViolation(*found)

    return refuse_append_only_rewrites


def install_append_only_guard(
    target: sa.Engine | sa.Connection,
    tables: Iterable[str] | sa.MetaData | None = None,
) -> None:
    """Refuse, on ``target``, statements that change rows of append-only tables.

    ``tables``: names, or a MetaData whose append-only tables count; default, those of
    :mod:`egregora.database.schemas`. Installing again replaces the guard (the new
    ``tables`` win); it never stacks, so one :func:`remove_append_only_guard` removes it.
    A guard on an engine covers its connections, and its ``execution_options()`` copies.
    """
    if tables is None:
        names = append_only_tables()
    elif isinstance(tables, sa.MetaData):
        names = append_only_tables(tables)
    elif isinstance(tables, str):
        raise TypeError("tables must be an iterable of names, not one string")
    else:
        names = frozenset(tables)
    remove_append_only_guard(target)
    listener = _listener(names)
    sa.event.listen(target, _EVENT, listener)
    _installed[target] = listener


def remove_append_only_guard(target: sa.Engine | sa.Connection) -> None:
    """Remove the guard from ``target``, if installed there (a no-op otherwise)."""
    listener = _installed.pop(target, None)
    if listener is not None and sa.event.contains(target, _EVENT, listener):
        sa.event.remove(target, _EVENT, listener)


def has_append_only_guard(target: sa.Engine | sa.Connection) -> bool:
    """Whether :func:`install_append_only_guard` installed a guard on ``target`` itself."""
    listener = _installed.get(target)
    return listener is not None and sa.event.contains(target, _EVENT, listener)


__all__ = [
    "ALLOW_REWRITE",
    "AppendOnlyViolation",
    "append_only_tables",
    "changed_append_only_table",
    "has_append_only_guard",
    "install_append_only_guard",
    "remove_append_only_guard",
]
