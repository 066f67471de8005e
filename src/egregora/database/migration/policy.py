"""Egregora's choices about rows, given to every create_copy_swap of its migrations.

The engine (:mod:`.copyswap`) prefers no column by name; these are the
application's: its tables record ``created_at``, and the earliest row of a
duplicate group is the one the application saw first, so it is kept; ``tasks``
is keyed by ``task_id``, which names its rows in refusal reports.
"""

from __future__ import annotations

from egregora.database.migration.copyswap.model import RowPolicy

EGREGORA_ROWS = RowPolicy(
    sample_columns=("id", "{table}_id", "task_id"),
    keep_first_by=("created_at",),
)
