"""${wrap_message(message)}

Revision ID: ${up_revision}
Revises:${" " if down_revision else ""}${down_revision | comma,n}
Create Date: ${create_date}

Frozen history: this script never imports the live metadata
(egregora.database.schemas); it carries the definitions it needs.
"""
<%!
    import re

    from egregora.database.migration.autogenerate.longlines import fit, wrap_message
%>\
<%
    # long SQL literals and comments broken within the line length (longlines.py)
    up, down = fit(upgrades), fit(downgrades)
    # import sa and op only when the generated code uses them (no unused import)
    body = "\n".join(part or "" for part in (up, down))
    uses_sa = re.search(r"\bsa\.", body) is not None
    uses_op = re.search(r"\bop\.", body) is not None
%>
from __future__ import annotations

from collections.abc import Sequence
% if uses_sa or imports:

% endif
% if uses_sa:
import sqlalchemy as sa
% endif
% if imports:
${imports}
% endif

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
% if uses_op:
from alembic import op
% endif

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${up if up else "pass"}


def downgrade() -> None:
    ${down if down else "pass"}
