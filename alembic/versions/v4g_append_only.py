"""Append-only core: journals and annotations refuse UPDATE, DELETE and TRUNCATE

The plan's "updates are new versions", enforced by the database where it
can: on PostgreSQL one trigger function, and a statement-level trigger on
each append-only table, raise ``restrict_violation`` (SQLSTATE 23001, an
IntegrityError to SQLAlchemy) with a message that names the table and says
what to do instead. Statement-level, so that an UPDATE matching no row is
refused too, and no per-row cost is paid.

Migrations may still rewrite these tables (quarantine, backfills): the
migration environment sets the transaction-local ``egregora.allow_rewrite``
to ``on``. That makes the triggers a guard against mistakes, not a security
boundary: any session may set it, and the table owner may drop the triggers.

DuckDB has no triggers: this revision changes nothing there. Applications
on DuckDB install egregora.database.guard on their engine instead.

Which tables, and why, is in schemas.py (APPEND_ONLY).

Revision ID: v4g
Revises: v4f
Create Date: 2026-11-28
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op

revision: str = "v4g"
down_revision: str | Sequence[str] | None = "v4f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.egregora")

#: Frozen: the append-only tables as of this revision.
TABLES = ("journals", "annotations")
FUNCTION = "egregora_append_only"
SETTING = "egregora.allow_rewrite"

CREATE_FUNCTION = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF coalesce(current_setting('{SETTING}', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'restrict_violation',
        MESSAGE = format(
            '%s on %s refused: %s is append-only (its rows are never changed or deleted; '
            'a change is a new row, a new version)', TG_OP, TG_TABLE_NAME, TG_TABLE_NAME),
        HINT = 'Insert a new row instead. Migrations that must rewrite rows run with '
               '{SETTING} = on (set by the Egregora migration environment).';
END
$body$
"""


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if not _is_postgresql():
        log.info(
            "v4g: %s has no triggers; nothing to do (see egregora.database.guard)",
            op.get_context().dialect.name,
        )
        return
    op.execute(CREATE_FUNCTION)
    quote = op.get_context().dialect.identifier_preparer.quote
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {quote(table + '_append_only')} "
            f"BEFORE UPDATE OR DELETE OR TRUNCATE ON {quote(table)} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def downgrade() -> None:
    if not _is_postgresql():
        return
    quote = op.get_context().dialect.identifier_preparer.quote
    for table in reversed(TABLES):
        op.execute(f"DROP TRIGGER {quote(table + '_append_only')} ON {quote(table)}")
    op.execute(f"DROP FUNCTION {FUNCTION}()")
