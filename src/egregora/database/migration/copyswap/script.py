"""Writing a create-copy-swap into an offline ``--sql`` script, where nothing can be read.

The plan comes from the revision's own definitions (``previous=``, and
``dependents=`` for referencing tables). In fail mode the script stops
itself on violating rows first: each rule's guard errors when rows break
it. On PostgreSQL, what only proves old rows or builds an index is written
after the script's COMMIT (see postgresql/aftercommit.py).
"""

from __future__ import annotations

from egregora.database.migration.copyswap.model import Change, Facts
from egregora.database.migration.copyswap.planner import plan
from egregora.database.migration.definitions import checks_changed_in_text, referred_table
from egregora.database.migration.errors import InvalidOperation
from egregora.database.migration.impl import EgregoraImpl
from egregora.database.migration.postgresql.aftercommit import defer

__all__ = ["write_script"]


def write_script(impl: EgregoraImpl, change: Change) -> None:
    """Write ``change``'s plan into the script, guards first in fail mode."""
    previous = change.declared
    if previous is None:
        raise InvalidOperation(
            f"create_copy_swap on {change.table} needs previous= (the definition "
            "it replaces) in offline --sql mode, where nothing can be reflected."
        )
    touched = {change.table, *(d.name for d in change.dependents)}
    touched |= {referred_table(fk) for fk in change.target.foreign_key_constraints}
    impl.take_back(touched, change.revision)  # what this script put off on them, now
    # a CHECK that keeps its name but not its expression: told by the text alone
    changed = frozenset(checks_changed_in_text(previous, change.target))
    written = plan(
        change.at(previous), impl.dialect, Facts(change.dependents, changed_checks=changed)
    )
    note = impl.offline_note(change)
    if note is not None:
        impl.execute(note)
    with impl.run.writing_own():
        if written.on_violation == "fail":  # the script stops itself on violating rows
            for rule in written.rules:
                impl.execute(rule.guard_sql)
        queue = impl.run.after_commit
        for step in written.steps:
            if not (step.online and defer(queue, change.revision, step.table, step.online)):
                impl.execute(step.sql)
