"""Normalizing SQL text for comparison (whitespace, case, outer parentheses)."""

from __future__ import annotations

import re

_QUOTED = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")""")


def strip_outer_parentheses(text: str) -> str:
    """``((a > b))`` -> ``a > b``; leaves ``(a) AND (b)`` alone."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def normalize_sql(text: str) -> str:
    """Lower-case and drop whitespace outside quotes, strip outer parentheses."""
    parts = _QUOTED.split(strip_outer_parentheses(text))
    return "".join(
        part if part[:1] in ("'", '"') else re.sub(r"\s+", " ", part.lower()).strip()
        for part in parts
    )


def _balanced(text: str) -> bool:
    depth = 0
    for part in _QUOTED.split(text):
        if part[:1] in ("'", '"'):
            continue
        for char in part:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    return False
    return depth == 0


def identifiers(sql: str) -> set[str]:
    """Identifiers in ``sql``, quoted or bare, lower-cased."""
    pairs = re.findall(r'"((?:[^"]|"")+)"|(\w+)', sql)
    return {(quoted.replace('""', '"') or bare).lower() for quoted, bare in pairs}
