"""PostgreSQL: the impl, and the online work (locks, statements, what follows the commit)."""
