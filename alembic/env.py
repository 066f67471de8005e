"""Alembic environment for Egregora; the logic is in egregora.database.migration.environment."""

import egregora.database.migrations  # noqa: F401  (registers op.create_copy_swap)
from alembic import context
from egregora.database.migration.environment import run

run(context)
