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
#: -x naive_timestamps: the time zone of TIMESTAMP values (no zone) adoption converts.
NAIVE_TIMESTAMPS_OPTION = "egregora_naive_timestamps"


def current_revision() -> str:
    """The revision whose upgrade() or downgrade() is calling us, for quarantine rows."""
    # Walks the frames themselves: inspect.stack() reads every frame's source
    # file, 2 ms a call (measured), and this runs for each statement of a run.
    frame = inspect.currentframe()
    while frame is not None:
        function = frame.f_code.co_name
        if function in ("upgrade", "downgrade") and "revision" in frame.f_globals:
            return f"{frame.f_globals['revision']} {function}"
        frame = frame.f_back
    return "unknown"
