"""The migration machinery: what ``alembic/env.py`` and revision scripts need.

Everything here may import Alembic; nothing in the application's run-time
modules (:mod:`egregora.database.schemas`, ``guard``, ``erd``) imports this
package (``tests/test_layers.py`` holds both to it).
"""
