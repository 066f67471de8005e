"""What a migration run shares between env.py's environment and the operations it runs.

Keys of the migration context's options (``context.opts``), and the revision
being run. Kept apart so that the operations and the environment both read
them without importing each other.
"""

from __future__ import annotations

import inspect

#: The run's on_violation (``-x on_violation``): an operation's own one wins.
ON_VIOLATION_OPTION = "egregora_on_violation"
#: A list where ``fail`` mode collects violations across every operation of
#: the run (see environment.py).
VIOLATIONS_OPTION = "egregora_violations"
#: A RunReport, filled for dry runs and ``-x report``.
REPORT_OPTION = "egregora_report"
#: A RowPolicy: which duplicate is kept, which columns name a row in reports.
ROW_POLICY_OPTION = "egregora_row_policy"


def current_revision() -> str:
    """The revision whose upgrade() or downgrade() is calling us, for quarantine rows."""
    for frame in inspect.stack(context=0):
        module_globals = frame.frame.f_globals
        if frame.function in ("upgrade", "downgrade") and "revision" in module_globals:
            return f"{module_globals['revision']} {frame.function}"
    return "unknown"
