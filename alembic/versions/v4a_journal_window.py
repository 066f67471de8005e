"""journals: CHECK (window_end >= window_start)

Roadmap row "Journals" (High). Generated with autogenerate, reviewed.

Revision ID: v4a
Revises: v3
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4a"
down_revision: str | Sequence[str] | None = "v3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.TIMESTAMP(timezone=True)


def journals(*extra: sa.SchemaItem) -> sa.Table:
    return sa.Table(
        "journals",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("content", sa.String()),
        sa.Column("created_at", TZ),
        sa.Column("source_checksum", sa.String()),
        sa.Column("title", sa.String()),
        sa.Column("window_start", TZ),
        sa.Column("window_end", TZ),
        *extra,
    )


def upgrade() -> None:
    op.create_copy_swap(
        journals(
            sa.CheckConstraint("window_end >= window_start", name="chk_journals_window_order")
        ),
        previous=journals(),
    )


def downgrade() -> None:
    op.create_copy_swap(
        journals(),
        previous=journals(
            sa.CheckConstraint("window_end >= window_start", name="chk_journals_window_order")
        ),
    )
