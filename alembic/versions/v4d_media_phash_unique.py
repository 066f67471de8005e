"""media: UNIQUE (phash), NULLs allowed

Roadmap row "Media" (Low). Autogenerate emits a plain create_unique_constraint
here (DuckDB can ALTER TABLE ADD UNIQUE); reviewed by hand into a
create_copy_swap, because the plain ALTER fails on the repeated hashes real
databases hold, while the rebuild reports them (or quarantines all but one
of each hash: the newest, media's rule in the environment's policy).
Dropping a UNIQUE needs the rebuild anyway.

Revision ID: v4d
Revises: v4c
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4d"
down_revision: str | Sequence[str] | None = "v4c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def media(*extra: sa.SchemaItem) -> sa.Table:
    return sa.Table(
        "media",
        sa.MetaData(),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("content", sa.String()),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source_checksum", sa.String()),
        sa.Column("filename", sa.String()),
        sa.Column("mime_type", sa.String()),
        sa.Column("media_type", sa.String()),
        sa.Column("phash", sa.String()),
        sa.CheckConstraint(
            "media_type IN ('image', 'video', 'audio')", name="chk_media_media_type"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
        *extra,
    )


def upgrade() -> None:
    op.create_copy_swap(
        media(sa.UniqueConstraint("phash", name="uq_media_phash")), previous=media()
    )


def downgrade() -> None:
    op.create_copy_swap(
        media(), previous=media(sa.UniqueConstraint("phash", name="uq_media_phash"))
    )
