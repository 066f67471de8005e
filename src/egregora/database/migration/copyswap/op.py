"""The create-copy-swap operation as a plain data object (Alembic's ops split).

``op.create_copy_swap(table, previous=..., column_map=..., on_violation=...)``
rebuilds a table to a complete target definition. Its execution lives in
:mod:`.toimpl`, its rendering in :mod:`.render`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.operations import MigrateOperation, Operations

from egregora.database.migration.copyswap.model import ColumnMapValue
from egregora.database.migration.definitions import plain_column

__all__ = ["CreateCopySwapOp"]


@Operations.register_operation("create_copy_swap")
class CreateCopySwapOp(MigrateOperation):
    """Rebuild ``table.name`` as ``table`` in one transaction, losing no row.

    - ``table``: the complete target definition (columns, types, defaults,
      comments, PK, UNIQUE, CHECK, FOREIGN KEY, indexes).
    - ``previous``: the definition being replaced. Online it may be omitted
      (the table is reflected); offline (``--sql``) it is required. It makes
      the operation reversible.
    - ``column_map``: target column -> SQL over the old row (renames, casts,
      fills). Unmapped columns take the old column of the same name, else
      their default.
    - ``on_violation``: ``"fail"`` or ``"quarantine"``; ``None`` takes the
      run's default (``-x on_violation=...``, else ``"fail"``).
    - ``dependents``: current definitions of the tables whose FOREIGN KEYs
      reference this one. Online they are reflected; offline they are needed
      only when such tables exist.
    - ``reverse_column_map``: the ``column_map`` of the downgrade, when it
      can't be inferred (only plain renames are).
    """

    def __init__(
        self,
        table: sa.Table,
        *,
        previous: sa.Table | None = None,
        column_map: Mapping[str, ColumnMapValue] | None = None,
        on_violation: str | None = None,
        dependents: Sequence[sa.Table] = (),
        reverse_column_map: Mapping[str, ColumnMapValue] | None = None,
    ) -> None:
        self.table = table
        self.previous = previous
        self.column_map = dict(column_map or {})
        self.on_violation = on_violation
        self.dependents = tuple(dependents)
        self.reverse_column_map = None if reverse_column_map is None else dict(reverse_column_map)

    @classmethod
    def create_copy_swap(cls, operations: Operations, table: sa.Table, **kw: Any) -> None:
        """Rebuild a table to the definition ``table``; see :class:`CreateCopySwapOp`."""
        operations.invoke(cls(table, **kw))

    def reverse(self) -> CreateCopySwapOp:
        if self.previous is None:
            raise ValueError(
                f"create_copy_swap on {self.table.name} can only be reversed when "
                "previous= gives the definition it replaces."
            )
        return CreateCopySwapOp(
            self.previous,
            previous=self.table,
            column_map=self.inferred_reverse_map(),
            on_violation=self.on_violation,
            dependents=self.dependents,
            reverse_column_map=self.column_map,
        )

    def inferred_reverse_map(self) -> dict[str, ColumnMapValue]:
        """The downgrade's column_map: given, or the inverse of plain renames."""
        if self.reverse_column_map is not None:
            return dict(self.reverse_column_map)
        reverse: dict[str, ColumnMapValue] = {}
        old_names = set(self.previous.columns.keys()) if self.previous is not None else set()
        for new_name, value in self.column_map.items():
            old_name = plain_column(value)
            if old_name is not None and old_name != new_name and old_name in old_names:
                reverse[old_name] = sa.column(new_name)
        return reverse

    def dropped_columns(self, previous: sa.Table | None = None) -> list[str]:
        """Columns of ``previous`` (else the given ``previous=``) that the target loses."""
        previous = self.previous if previous is None else previous
        if previous is None:
            return []
        kept = set(self.table.columns.keys())
        sources = {plain_column(v) for v in self.column_map.values()}
        return [c for c in previous.columns.keys() if c not in kept | sources]  # noqa: SIM118

    def changed_types(self) -> list[tuple[str, str, str]]:
        """(column, old type, new type) of the columns kept under another type."""
        if self.previous is None:
            return []
        found = []
        for column in self.table.columns:
            old = self.previous.columns.get(column.name)
            if old is not None and column.name not in self.column_map:
                before, after = _type_name(old.type), _type_name(column.type)
                if before != after:
                    found.append((column.name, before, after))
        return found

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("create_copy_swap", self.table.name)


def _type_name(type_: sa.types.TypeEngine[Any]) -> str:
    """A type as generic SQL (``VARCHAR``, ``INTEGER``): reflected and declared types agree."""
    try:
        return str(type_.compile()).upper()
    except sa.exc.CompileError:
        return repr(type_)
