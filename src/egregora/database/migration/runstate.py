"""The run object: what one migration run's environment and its operations share.

``environment._migrate`` makes one :class:`RunState` per run and hands it to
Alembic's migration context (``RUN_OPTION``); every operation reads it from
there through its impl (``EgregoraImpl.run``). An operation run on a bare
``MigrationContext`` (a test, a tool) gets a default one, kept for that
context: fail mode, Egregora's row policy, no report, nothing held back,
nothing after the commit.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from egregora.database.migration.copyswap.model import Change, OnViolation, RowPolicy
from egregora.database.migration.copyswap.preflight import Violation
from egregora.database.migration.copyswap.validate import check_on_violation
from egregora.database.migration.policy import EGREGORA_ROWS
from egregora.database.migration.postgresql.aftercommit import AfterCommit
from egregora.database.migration.postgresql.locks import LockPolicy
from egregora.database.migration.report import RunReport
from egregora.database.migration.tablecache import TableCache

__all__ = ["RUN_OPTION", "HoldsRebuilds", "RunState", "current_revision", "run_of"]

#: The migration context's option that holds the run's RunState.
RUN_OPTION = "egregora_run"


class HoldsRebuilds(Protocol):
    """A run's DuckDB rebuilds held back to write each table once (copyswap/held.py)."""

    def hold(self, change: Change) -> bool:
        """Hold ``change`` back with its table's others; False when it must run now."""
        ...

    def pending(self, name: str) -> sa.Table | None:
        """The table as its held stages leave it; None when none are held."""
        ...

    def own(self) -> contextlib.AbstractContextManager[None]:
        """While inside, the run's own statements: no barrier."""
        ...

    def touching(self, names: Iterable[str]) -> AbstractContextManager[None]:
        """A block whose statements concern only the tables ``names`` (and their catalog)."""
        ...


@dataclass
class RunState:
    """One run's choices and what it gathers, made once by the environment."""

    #: the run's ``-x on_violation``: an operation's own one wins
    on_violation: OnViolation = "fail"
    #: which duplicate is kept, which columns name a row in reports
    policy: RowPolicy = field(default_factory=RowPolicy)
    #: what the run did, for dry runs and ``-x report`` (always, inside env.py)
    report: RunReport | None = None
    #: fail mode inside env.py: every operation's violations, then one refusal
    violations: list[Violation] | None = None
    #: PostgreSQL: lock_timeout and retries (postgresql/locks.py)
    lock_policy: LockPolicy | None = None
    #: PostgreSQL: what follows the commit (postgresql/aftercommit.py)
    after_commit: list[AfterCommit] | None = None
    #: DuckDB: the rebuilds held back to the end of the run (copyswap/held.py)
    held: HoldsRebuilds | None = None
    #: DuckDB, while rebuilds are held: the tables as last reflected (tablecache.py)
    tables: TableCache | None = None
    #: DuckDB's memory_limit, for an out-of-memory refusal (asked at the start)
    memory_limit: str = "unknown"
    #: ``-x naive_timestamps``: the zone TIMESTAMP values (no zone) were written in,
    #: which adoption converts to TIMESTAMPTZ (assessment.py)
    naive_timestamps: str | None = None
    #: offline: an operation is writing its own statements (they take nothing back)
    own_statements: bool = False
    _late: tuple[object, set[str]] | None = field(default=None, repr=False)

    def mode(self, given: str | None) -> OnViolation:
        """An operation's on_violation (checked), else the run's."""
        chosen = given or self.on_violation
        check_on_violation(chosen)
        return "quarantine" if chosen == "quarantine" else "fail"

    def late_keys(self, connection: sa.Connection) -> set[str]:
        """Tables whose keys were added by ALTER TABLE in the connection's current transaction.

        DuckDB can't check a FOREIGN KEY against such a key later in the same
        transaction (see CopySwapPlan.deferred_keys): a rebuild that would
        reference one re-keys it first.
        """
        transaction = connection.get_transaction()
        if self._late is None or self._late[0] is not transaction:
            self._late = (transaction, set())
        return self._late[1]

    @contextlib.contextmanager
    def writing_own(self) -> Iterator[None]:
        """The statements written inside are the operation's own: they take no work back."""
        was, self.own_statements = self.own_statements, True
        try:
            yield
        finally:
            self.own_statements = was


def run_of(opts: MutableMapping[str, Any]) -> RunState:
    """The run in a migration context's options; a default one, kept there, if none.

    The default keeps Egregora's row policy (policy.py), as env.py's runs do.
    """
    found = opts.get(RUN_OPTION)
    if not isinstance(found, RunState):
        found = opts[RUN_OPTION] = RunState(policy=EGREGORA_ROWS)
    return found


def current_revision() -> str:
    """The revision whose upgrade() or downgrade() is calling us, for quarantine rows.

    Asked once per operation (its impl passes it on). Walks the frames
    themselves: inspect.stack() reads every frame's source file, 2 ms a call.
    """
    frame = inspect.currentframe()
    while frame is not None:
        function = frame.f_code.co_name
        if function in ("upgrade", "downgrade") and "revision" in frame.f_globals:
            return f"{frame.f_globals['revision']} {function}"
        frame = frame.f_back
    return "unknown"
