"""SQL text as this project reads it: one tokenizer, and what is asked of it.

Statements are read, never parsed: which names a statement holds (barriers,
what follows the commit), which table it changes (the lock report), whether
an expression hides a second statement, and two spellings of one expression
compared. Every question goes through :func:`tokens`, so that quoting and
case are decided once:

- ``'...'`` is a string literal, ``"..."`` a quoted identifier (doubled
  quotes escape), a run of word characters a bare word, anything else a
  symbol;
- :func:`identifiers` folds every name to lower case, and counts the words
  of strings too: DuckDB matches names case-insensitively, quoted or not,
  and the questions asked of it (barriers, ``take``) must err towards a
  match;
- :func:`folded` folds as PostgreSQL does: a bare name to lower case, a
  quoted one as written (the lock report names PostgreSQL's tables).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Token",
    "folded",
    "identifiers",
    "name_after",
    "normalize_sql",
    "statement_outside_quotes",
    "strip_outer_parentheses",
    "tokens",
]

_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|\w+|\s+|.""", re.DOTALL)


@dataclass(frozen=True)
class Token:
    """One piece of SQL text: a ``string``, a ``quoted`` name, a bare ``word``, a ``symbol``."""

    kind: Literal["string", "quoted", "word", "space", "symbol"]
    text: str

    @property
    def name(self) -> str:
        """A quoted identifier without its quotes, a word as written."""
        return self.text[1:-1].replace('""', '"') if self.kind == "quoted" else self.text

    @property
    def is_name(self) -> bool:
        return self.kind in ("quoted", "word")


def _kind(text: str) -> Literal["string", "quoted", "word", "space", "symbol"]:
    first = text[0]
    if first == "'":
        return "string"
    if first == '"':
        return "quoted"
    if text.isspace():
        return "space"
    return "word" if first.isalnum() or first == "_" else "symbol"


def tokens(sql: str) -> list[Token]:
    """``sql`` as tokens, spaces included (an unclosed quote reads as a symbol)."""
    return [Token(_kind(text), text) for text in _TOKEN.findall(sql)]


def identifiers(sql: str) -> set[str]:
    """Names in ``sql``, quoted or bare, lower-cased; the words of its strings too.

    A statement may name a table in a string (``query_table('posts')``, a
    catalog query's ``WHERE table_name = 'posts'``): when in doubt, a name.
    """
    found: set[str] = set()
    for token in tokens(sql):
        if token.is_name:
            found.add(token.name.lower())
        elif token.kind == "string":
            found.update(word.lower() for word in re.findall(r"\w+", token.text))
    return found


def folded(token: Token) -> str:
    """A name as PostgreSQL folds it: bare to lower case, quoted as written."""
    return token.name if token.kind == "quoted" else token.text.lower()


def name_after(sql: str, leads: Sequence[Sequence[str]], then: str | None = None) -> Token | None:
    """The name after the first of ``leads`` (keyword sequences) that ``sql`` begins with.

    ``then``: a keyword that must follow the name (``ON`` after an index's).
    """
    words = [t for t in tokens(sql) if t.kind != "space"]
    upper = [t.text.upper() for t in words]
    for lead in leads:
        n = len(lead)
        if upper[:n] != list(lead) or len(words) <= n or not words[n].is_name:
            continue
        if then is None or upper[n + 1 : n + 2] == [then]:
            return words[n]
    return None


def statement_outside_quotes(sql: str) -> bool:
    """Whether ``sql`` holds a ``;`` outside its strings and quoted names (a second statement)."""
    return any(t.kind == "symbol" and t.text == ";" for t in tokens(sql))


def strip_outer_parentheses(text: str) -> str:
    """``((a > b))`` -> ``a > b``; leaves ``(a) AND (b)`` alone."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def normalize_sql(text: str) -> str:
    """Lower-case and fold whitespace outside quotes, strip outer parentheses.

    Whitespace next to a string or a quoted name goes too: ``IN ('a', 'b')``
    and ``IN ('a','b')`` are one expression spelled two ways.
    """
    parts: list[str] = []
    plain: list[str] = []
    for token in [*tokens(strip_outer_parentheses(text)), Token("string", "")]:
        if token.kind not in ("string", "quoted"):
            plain.append(token.text)
            continue
        parts.append(re.sub(r"\s+", " ", "".join(plain).lower()).strip())
        parts.append(token.text)
        plain = []
    return "".join(parts)


def _balanced(text: str) -> bool:
    depth = 0
    for token in tokens(text):
        if token.kind != "symbol":
            continue
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        if depth < 0:
            return False
    return depth == 0
