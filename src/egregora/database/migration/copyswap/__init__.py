"""``op.create_copy_swap``: the operation, its plan, and how it runs on each engine."""
