"""tasks: task_type may be 'enrich_url'

The Egregora application enqueues enrich_url tasks (its schemas.py allows
the type since 2026-01-21, commit 12119c12c); V4's CHECK refused them. The
CHECK chk_tasks_task_type gains the value: on DuckDB tasks is rebuilt, on
PostgreSQL the CHECK is dropped and added again (NOT VALID, then VALIDATE).
No existing row can break it. Downgrade narrows it again: rows of type
enrich_url are then reported (or quarantined), never dropped.

Generated with autogenerate and reviewed: the previous definition is
written with the types of the target (autogenerate took UUID and Uuid for a
conversion) and with the CHECK's name.

Revision ID: v4i
Revises: v4h
Create Date: 2026-12-07

Frozen history: this script never imports the live metadata
(egregora.database.schemas); it carries the definitions it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import op

revision: str = "v4i"
down_revision: str | Sequence[str] | None = "v4h"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("generate_banner", "update_profile", "enrich_media")
AFTER = (*BEFORE, "enrich_url")


def tasks(task_types: tuple[str, ...]) -> sa.Table:
    allowed = ", ".join(f"'{t}'" for t in task_types)
    return sa.Table(
        "tasks",
        sa.MetaData(),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("processed_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed', 'superseded')",
            name=op.f("chk_tasks_status"),
        ),
        sa.CheckConstraint(f"task_type IN ({allowed})", name=op.f("chk_tasks_task_type")),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_tasks")),
    )


def upgrade() -> None:
    op.create_copy_swap(tasks(AFTER), previous=tasks(BEFORE))


def downgrade() -> None:
    op.create_copy_swap(tasks(BEFORE), previous=tasks(AFTER))
