"""profiles: CHECK (length(title) > 0)

Roadmap row "Profiles" (Medium). Generated with autogenerate, reviewed. A NULL
title passes (SQL's CHECK semantics); an empty one does not.

Revision ID: v4b
Revises: v4a
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4b"
down_revision: str | Sequence[str] | None = "v4a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def profiles(*extra: sa.SchemaItem) -> sa.Table:
    return sa.Table(
        "profiles",
        sa.MetaData(),
        sa.Column("id", sa.String()),
        sa.Column("content", sa.String()),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True)),
        sa.Column("source_checksum", sa.String()),
        sa.Column("subject_uuid", sa.String()),
        sa.Column("title", sa.String()),
        sa.Column("alias", sa.String()),
        sa.Column("summary", sa.String()),
        sa.Column("avatar_url", sa.String()),
        sa.Column("interests", sa.ARRAY(sa.String())),
        *extra,
    )


def title() -> sa.CheckConstraint:
    return sa.CheckConstraint("length(title) > 0", name="chk_profiles_title_not_empty")


def upgrade() -> None:
    op.create_copy_swap(profiles(title()), previous=profiles())


def downgrade() -> None:
    op.create_copy_swap(profiles(), previous=profiles(title()))
