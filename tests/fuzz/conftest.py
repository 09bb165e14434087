"""Fuzz fixtures: one migrated database per module, and the hypothesis profile CI runs.

Every example runs inside a transaction that is rolled back (`rollback_each`), so 500 examples
share one clone and leave nothing behind. The profile is derandomized: CI sees the same examples
every run, and a failure reproduces locally. Set CHIRPBASE_FUZZ_RANDOM=1 (and optionally
CHIRPBASE_FUZZ_EXAMPLES=5000) to explore beyond the fixed examples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from tests import pg

EXAMPLES = int(os.environ.get("CHIRPBASE_FUZZ_EXAMPLES", "500"))

settings.register_profile(
    "chirpbase-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("CHIRPBASE_FUZZ_RANDOM", "") in ("", "0"),
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ],
)
FUZZ = settings.get_profile("chirpbase-fuzz")


@pytest.fixture(scope="module")
def fuzz_db(pg_template: pg.TemplateDB) -> Iterator[str]:
    """One migrated clone for the whole module (examples roll back what they change)."""
    name = pg_template.clone()
    try:
        yield name
    finally:
        pg.drop_database(name)


@pytest.fixture(scope="module")
def fuzz_conn(fuzz_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection as `postgres`; open `transaction(force_rollback=True)` per example."""
    with psycopg.connect(pg.app_dsn(fuzz_db), autocommit=True) as c:
        yield c
