from alembic import command
from tests.conftest import alembic_cfg
def test_pg_head(pg_url):
    command.upgrade(alembic_cfg(pg_url), "head")
