"""Kept for frozen history: revision ``v3_baseline`` imports ``create_or_adopt`` from here.

The code lives in :mod:`egregora.database.migration.adoption`. The application
never imports this module.
"""

from egregora.database.migration.adoption import create_or_adopt

__all__ = ["create_or_adopt"]
