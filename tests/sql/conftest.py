"""Fixtures for the SQL tests."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests import pg


@pytest.fixture(scope="module")
def shared_conn(pg_template: pg.TemplateDB) -> Iterator[psycopg.Connection]:
    """One migrated clone for a whole module, as `postgres` (autocommit).

    For checks that leave no trace (refused rows, catalog queries): a clone costs a few hundred
    milliseconds, so parametrized refusal cases share one. Tests that change state use `conn`.
    """
    name = pg_template.clone()
    try:
        with psycopg.connect(pg.app_dsn(name), autocommit=True) as c:
            yield c
    finally:
        pg.drop_database(name)


@pytest.fixture(scope="module")
def shared_admin_dsn(shared_conn: psycopg.Connection) -> str:
    """Superuser DSN for the module's shared clone."""
    return pg.admin_dsn(shared_conn.info.dbname)
