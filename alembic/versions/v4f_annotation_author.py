"""annotations.author_id REFERENCES profiles (id)

Roadmap row "Foreign Keys", the other reference the data supports. Generated
with autogenerate (a create_copy_swap: DuckDB can't add a FOREIGN KEY by
ALTER), reviewed. annotations.parent_id gets no FOREIGN KEY: it points at a
message, a post or an annotation depending on parent_type, and messages are
not stored in this database.

Revision ID: v4f
Revises: v4e
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4f"
down_revision: str | Sequence[str] | None = "v4e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def annotations(referencing: bool) -> sa.Table:
    meta = sa.MetaData()
    sa.Table("profiles", meta, sa.Column("id", sa.String(), primary_key=True))
    return sa.Table(
        "annotations",
        meta,
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("content", sa.String()),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("source_checksum", sa.String()),
        sa.Column("parent_id", sa.String()),
        sa.Column("parent_type", sa.String()),
        sa.Column("author_id", sa.String()),
        sa.CheckConstraint(
            "parent_type IN ('message', 'post', 'annotation')", name="chk_annotations_parent_type"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_annotations"),
        *(
            [
                sa.ForeignKeyConstraint(
                    ["author_id"], ["profiles.id"], name="fk_annotations_author_id_profiles"
                )
            ]
            if referencing
            else []
        ),
    )


def upgrade() -> None:
    op.create_copy_swap(annotations(referencing=True), previous=annotations(referencing=False))


def downgrade() -> None:
    op.create_copy_swap(annotations(referencing=False), previous=annotations(referencing=True))
