"""Long lines in generated revisions, broken so that the file passes ``ruff check`` (E501).

Autogenerate writes SQL into revisions as Python string literals: CHECK
expressions, server defaults, ``previous=`` in the engine's own (longer)
spelling, ``column_map`` entries. ``ruff format`` (the revision's post-write
hook) breaks lines between arguments but never inside a string literal, so a
literal longer than a line failed ``make lint``. The revision template
(``alembic/script.py.mako``) passes the rendered code through :func:`fit`,
which writes each long literal as an implicit concatenation of pieces, cut
at SQL token boundaries (after a space where it can; never inside a quoted
SQL literal or identifier), so the value is the same string. ``ruff format``
then lays the pieces out one per line, or joins them back where they fit.

Pieces are at most :data:`PIECE` columns wide, which fits the deepest line a
generated revision has (a server default of a column of a ``dependents=``
table, :data:`DEEPEST` columns in) within the line length. A literal after
``name=`` or ``key:`` is split, and put in parentheses, when it and its
prefix would not fit there. A piece that is one SQL token wider than that (a
long quoted literal) can't be cut: it carries ``# noqa: E501``. Comments and
the ``-m`` message are wrapped too.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from collections.abc import Iterator
from unicodedata import east_asian_width

#: the project's line length (pyproject.toml)
LINE = 100
#: where the deepest piece of a generated revision sits (see the module docstring)
DEEPEST = 24
#: the widest piece of a split literal: at DEEPEST, with its quotes and a comma
PIECE = LINE - DEEPEST - len('"",')
_INDENT = "    "  # the template's indent of the first line of a rendered body

# One SQL token: a quoted literal or identifier (to its end, or the text's),
# a run of spaces, a word or number, an operator, or any other character.
_ATOM = re.compile(
    r"""'(?:[^']|'')*'?|"(?:[^"]|"")*"?|\s+|[\w$.]+|::|[<>=!|&+\-*/%^~@#]+|.""", re.S
)
_OPEN, _CLOSE = "([{", ")]}"


def sql_pieces(text: str, width: int = PIECE) -> list[str]:
    """``text`` in consecutive pieces of at most ``width`` characters, cut between SQL tokens.

    A cut after a space is preferred; a token longer than ``width`` is a piece
    of its own. ``"".join(pieces) == text``.
    """
    atoms = _ATOM.findall(text)
    pieces: list[str] = []
    start = 0
    while start < len(atoms):
        end = _cut(atoms, start, width)
        pieces.append("".join(atoms[start:end]))
        start = end
    return pieces


def _cut(atoms: list[str], start: int, width: int) -> int:
    """Where the piece that begins at ``atoms[start]`` ends (exclusive)."""
    length, best, spaced = 0, start + 1, 0
    for index in range(start, len(atoms)):
        length += columns(atoms[index])
        if length > width:
            return spaced or best
        best = index + 1
        if atoms[index].isspace():
            spaced = index + 1
    return len(atoms)


def columns(text: str) -> int:
    """How wide ``text`` is inside a Python literal: escapes and wide characters count 2."""
    return sum(2 if c in "\\\n\r\t" or east_asian_width(c) in "WF" else 1 for c in text)


def fit(code: str | None) -> str | None:
    """A rendered revision body (Alembic's ``upgrades``) with its long lines broken.

    Its first line comes unindented (the template indents it), the others
    indented. Code that does not tokenize is returned as it is.
    """
    if not code:
        return code
    source = _INDENT + code + "\n"
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return code
    lines = source.splitlines(keepends=True)
    for (row, col), (end_row, end_col), text in reversed(list(_replacements(tokens))):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + text + lines[end_row - 1][end_col:]
        del lines[row:end_row]
    return "".join(lines).removeprefix(_INDENT).removesuffix("\n")


def _replacements(
    tokens: list[tokenize.TokenInfo],
) -> Iterator[tuple[tuple[int, int], tuple[int, int], str]]:
    depth = 0
    significant: list[tokenize.TokenInfo] = []
    for index, token in enumerate(tokens):
        if token.type == tokenize.OP and token.string in _OPEN:
            depth += 1
        elif token.type == tokenize.OP and token.string in _CLOSE:
            depth -= 1
        elif token.type == tokenize.COMMENT and len(token.line.rstrip("\n")) > LINE:
            if token.line.strip().startswith("#"):  # a comment line of its own
                yield token.start, token.end, _wrapped_comment(token)
        elif token.type == tokenize.STRING:
            following = _next_significant(tokens, index)
            split = _split_literal(token, significant[-2:], following, depth)
            if split is not None:
                yield token.start, token.end, split
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            significant.append(token)


def _next_significant(tokens: list[tokenize.TokenInfo], index: int) -> tokenize.TokenInfo | None:
    for token in tokens[index + 1 :]:
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            return token
    return None


def _split_literal(
    token: tokenize.TokenInfo,
    before: list[tokenize.TokenInfo],
    after: tokenize.TokenInfo | None,
    depth: int,
) -> str | None:
    """The literal as an implicit concatenation, or None when it is short or not plain."""
    if not re.match(r"""^[uU]?(['"])(?!\1\1)""", token.string):
        return None  # raw, bytes, f-strings and triple-quoted strings are left as they are
    value = ast.literal_eval(token.string)
    # on a line of its own, or after ``name=`` / ``key:`` on the same line
    hanging = bool(before) and before[-1].string in ("=", ":")
    prefix = len(before[0].string) + 2 if hanging and len(before) == 2 else 0
    if columns(value) + prefix <= PIECE:
        return None
    pieces = sql_pieces(value)
    parts = [repr(p) + ("  # noqa: E501\n" if columns(p) > PIECE else "") for p in pieces]
    text = " ".join(parts).replace("\n ", "\n")
    concatenated = after is not None and after.type == tokenize.STRING
    if (hanging or depth == 0) and not concatenated:
        return f"({text})"  # ruff keeps these: the pieces go on lines of their own
    return text


def _wrapped_comment(token: tokenize.TokenInfo) -> str:
    indent = " " * token.start[1]
    body = token.string.removeprefix("#").strip()
    lines = textwrap.wrap(body, LINE - len(indent) - 4, break_long_words=False)
    return ("\n" + indent).join(("# " if i == 0 else "#   ") + line for i, line in enumerate(lines))


def wrap_message(message: str | None) -> str:
    """The ``-m`` message as the revision's docstring opens it: lines within the limit."""
    if not message:
        return ""
    lines = textwrap.wrap(message, LINE, initial_indent='"""', break_long_words=False)
    return "\n".join(lines).removeprefix('"""')
