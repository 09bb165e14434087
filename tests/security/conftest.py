"""Security fixtures: PostgREST-shaped sessions (login `authenticator`, then the JWT's role)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests import pg

API_ROLES = ("anon", "authenticated")


def authenticator_dsn(dbname: str) -> str:
    """PostgREST's login role: it may only switch to anon, authenticated and service_role."""
    return f"postgresql://authenticator:authenticator@{pg.HOST}:{pg.PORT}/{dbname}"


def claims_for(role: str, **extra: Any) -> dict[str, Any]:
    jwt: dict[str, Any] = {"role": role, "iss": "supabase", "aud": role, **extra}
    if role == "authenticated":
        jwt.setdefault("sub", "00000000-0000-0000-0000-000000000001")
    return jwt


def as_role(
    conn: psycopg.Connection,
    role: str,
    statement: sql.Composable | str,
    params: Any = None,
    claims: dict[str, Any] | None = None,
) -> Any:
    """Run one statement as PostgREST would for a request with `role`'s JWT; rolled back.

    Returns the rows (or the row count), so callers can assert on what RLS let through.
    """
    with conn.transaction(force_rollback=True):
        conn.execute(
            "select set_config('request.jwt.claims', %s, true),"
            " set_config('request.jwt.claim.role', %s, true),"
            " set_config('request.method', 'POST', true)",
            (json.dumps(claims or claims_for(role)), role),
        )
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        cur = conn.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else cur.rowcount


@pytest.fixture(scope="module")
def clone(pg_template: pg.TemplateDB) -> Iterator[str]:
    name = pg_template.clone()
    try:
        yield name
    finally:
        pg.drop_database(name)


@pytest.fixture(scope="module")
def owner(clone: str) -> Iterator[psycopg.Connection]:
    """The worker's role (`postgres`, owner of everything chirpbase made), autocommit."""
    with psycopg.connect(pg.app_dsn(clone), autocommit=True) as c:
        yield c


@pytest.fixture(scope="module")
def api(clone: str) -> Iterator[psycopg.Connection]:
    """A session like PostgREST's: logged in as `authenticator`, autocommit."""
    with psycopg.connect(authenticator_dsn(clone), autocommit=True) as c:
        yield c
