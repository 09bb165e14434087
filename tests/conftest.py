"""Shared fixtures: a real PostgreSQL per test, and waiting on conditions."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from tests import pg
from worker.db import Database


@pytest.fixture(scope="session")
def pg_template() -> Iterator[pg.TemplateDB]:
    pg.start_cluster()
    template = pg.build_template()
    yield template
    pg.drop_database(template.name)


@pytest.fixture
def db_name(pg_template: pg.TemplateDB) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    name = pg_template.clone()
    yield name
    pg.drop_database(name)


@pytest.fixture
def empty_db(pg_template: pg.TemplateDB) -> Iterator[str]:
    """A brand-new database with only what Supabase provides (bootstrap), no migrations."""
    name = f"chirpbase_empty_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    pg.create_database(name)
    try:
        pg.bootstrap(name)
        yield name
    finally:
        pg.drop_database(name)


@pytest.fixture
def dsn(db_name: str) -> str:
    """Connection string for the test database as the worker's role (`postgres`)."""
    return pg.app_dsn(db_name)


@pytest.fixture
def admin_dsn(db_name: str) -> str:
    """Connection string for the test database as the cluster superuser."""
    return pg.admin_dsn(db_name)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test database as `postgres`."""
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@pytest.fixture
async def database(dsn: str) -> AsyncIterator[Database]:
    db = Database(dsn, min_size=1, max_size=8, name="chirpbase-test")
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def cron_db(pg_template: pg.TemplateDB) -> Iterator[psycopg.Connection]:
    """The pg_cron database, held exclusively (advisory lock) for this test.

    pg_cron lives in one database per cluster, so schedule tests cannot use a clone. The
    `schedule` config is restored afterwards.
    """
    name = pg.ensure_cron_database()
    with psycopg.connect(pg.app_dsn(name), autocommit=True) as c:
        c.execute("select pg_advisory_lock(hashtext('chirpbase-cron-tests'))")
        saved = c.execute("select value from public.configs where key = 'schedule'").fetchone()
        try:
            yield c
        finally:
            if saved is not None:
                c.execute(
                    "update public.configs set value = %s where key = 'schedule'",
                    (psycopg.types.json.Jsonb(saved[0]),),
                )
            c.execute("select pg_advisory_unlock(hashtext('chirpbase-cron-tests'))")
