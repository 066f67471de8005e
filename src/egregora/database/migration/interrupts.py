"""Ctrl-C during a run, noted even where Python drops it.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be
when the signal's handler runs. Inside a finalizer (``__del__``, a weakref
callback, garbage collection: SQLAlchemy's and DuckDB's cleanup of
connections, cursors and reflected tables run there) it can't propagate:
Python prints "Exception ignored in ..." and goes on, and the run would
COMMIT as though no key had been pressed. Seen once in CI: an upgrade
exited 0 2.5 s after Ctrl-C, with every revision applied;
``tests/migration/test_interrupts.py`` drops one on purpose.

A run therefore notes every SIGINT here, and asks :meth:`Interrupts.check`
just before its COMMIT: a Ctrl-C Python dropped still rolls the run back,
with the same "Interrupted" paragraph as one that propagated.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

__all__ = ["Interrupts", "watched"]


class Interrupts:
    """Whether Ctrl-C was pressed since the run began."""

    def __init__(self) -> None:
        self.seen = False

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed, even if Python dropped it."""
        if self.seen:
            raise KeyboardInterrupt


@contextlib.contextmanager
def watched() -> Iterator[Interrupts]:
    """Note every SIGINT while inside; the handler in place still runs (and raises).

    Once Ctrl-C was pressed, any failure leaving the block is raised as
    ``KeyboardInterrupt``: a library that turns DuckDB's "Query interrupted"
    into another error (duckdb-sqlalchemy's inspector makes it a
    ``NotImplementedError``) would otherwise be what the user reads.

    Only the main thread can set a signal handler, and a process that ignores
    SIGINT or leaves it to the system never sees Ctrl-C in Python: there
    nothing is installed and :meth:`Interrupts.check` never raises. A
    ``KeyboardInterrupt`` Python drops in a finalizer is not printed as a
    traceback: the run reports it as "Interrupted".
    """
    interrupts = Interrupts()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield interrupts
        return

    def noting(signum: int, frame: FrameType | None) -> Any:
        interrupts.seen = True
        return previous(signum, frame)

    unraisable = sys.unraisablehook

    def dropped(args: Any) -> None:  # sys.UnraisableHookArgs
        if args.exc_type is not None and issubclass(args.exc_type, KeyboardInterrupt):
            interrupts.seen = True
            return
        unraisable(args)

    signal.signal(signal.SIGINT, noting)
    sys.unraisablehook = dropped
    try:
        yield interrupts
    except Exception:
        if interrupts.seen:  # failed after Ctrl-C: told as the interrupt, not as its symptom
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = unraisable
