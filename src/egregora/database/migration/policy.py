"""Egregora's choices about rows, given to every create_copy_swap of its migrations.

The engine (:mod:`.copyswap`) prefers no column by name; these are the
application's. ``tasks`` is keyed by ``task_id``, which names its rows in
refusal reports. Of rows that repeat a new key, which one stays depends on
how the application writes the table (franklinbaldo/egregora, December 2025
to January 2026: ``database/repository.py``, ``profile_cache.py``,
``task_store.py``, ``agents/shared/annotations``), and ``created_at`` says
when each row was written:

- **posts, profiles, media: the newest stays.** The application rewrites
  them by writing a new row: ``ContentRepository.save`` inserts a row for
  every save of a document, under the document's id, with its time as
  ``created_at`` (an updated post or profile, a medium saved again once
  ``enrich_media`` has filled it in); the startup caches of posts and
  profiles replace a row by one with ``created_at = now()``. The newest row
  is the current version; the older ones are stale.
- **journals, annotations, tasks (and any other table): the earliest stays.**
  Journals and annotations are append-only (a correction, an edit, is a new
  row with a new id: annotations take a fresh UUID, journals an id derived
  from their window), so a repeated id is a second copy of the first record.
  Tasks take a fresh UUID when enqueued and are updated in place, never
  re-inserted, so a repeated ``task_id`` is a copy too.

``post_authors`` has no ``created_at``: a repeated (post, author) keeps its
first position (the primary key's order).
"""

from __future__ import annotations

from egregora.database.migration.copyswap.model import RowPolicy

EGREGORA_ROWS = RowPolicy(
    sample_columns=("id", "{table}_id", "task_id"),
    keep_first_by=("created_at",),
    keep_last_in=frozenset({"posts", "profiles", "media"}),
)
