"""The API roles (`anon`, `authenticated`) reach nothing, beyond what tests/sql/test_access.py
already proves for public tables, views and functions.

Sessions are shaped like PostgREST's: logged in as `authenticator`, then `set local role` to the
JWT's role with `request.jwt.claims` set. Covered here: sequences (used, not only granted),
`supabase_migrations`, the `cron` schema in the pg_cron database, `storage.objects` and
`storage.buckets` writes for the generated-images bucket, views running as their caller, CREATE
on every schema, role attributes and memberships, spoofed JWT claims, security definer functions
in any schema, and other sessions' query text.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.security.conftest import API_ROLES, as_role, authenticator_dsn, claims_for

DENIED = psycopg.errors.InsufficientPrivilege


def _sequences(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select c.oid::regclass::text from pg_class c"
        " where c.relnamespace = 'public'::regnamespace and c.relkind = 'S' order by 1"
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("role", API_ROLES)
def test_sequences_cannot_be_used(
    api: psycopg.Connection, owner: psycopg.Connection, role: str
) -> None:
    sequences = _sequences(owner)
    assert "jobs_id_seq" in " ".join(sequences) and len(sequences) >= 8
    for seq in sequences:
        for statement in (
            sql.SQL("select nextval({})").format(sql.Literal(seq)),
            sql.SQL("select setval({}, 1)").format(sql.Literal(seq)),
            sql.SQL("select last_value from {}").format(sql.SQL(seq)),
        ):
            with pytest.raises(DENIED, match="permission denied"):
                as_role(api, role, statement)


@pytest.mark.parametrize("role", API_ROLES)
def test_migration_history_is_out_of_reach(api: psycopg.Connection, role: str) -> None:
    table = "supabase_migrations.schema_migrations"
    for statement in (
        f"select * from {table}",
        f"insert into {table} (version) values ('99999999999999')",
        f"update {table} set name = 'x'",
        f"delete from {table}",
    ):
        with pytest.raises(DENIED, match="permission denied for schema supabase_migrations"):
            as_role(api, role, statement)


@pytest.fixture
def cron_api(cron_db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """An API-role session in the pg_cron database (held exclusively by `cron_db`)."""
    with psycopg.connect(authenticator_dsn(cron_db.info.dbname), autocommit=True) as c:
        yield c


@pytest.mark.parametrize("role", API_ROLES)
def test_pg_cron_is_out_of_reach(
    cron_api: psycopg.Connection, cron_db: psycopg.Connection, role: str
) -> None:
    """Scheduling SQL would be code execution: no table or function of `cron` is reachable."""
    before = cron_db.execute("select jobid, schedule, command from cron.job order by 1").fetchall()
    assert any(c.startswith("select public.reap_expired_leases") for _i, _s, c in before)
    for statement in (
        "select * from cron.job",
        "select * from cron.job_run_details",
        "insert into cron.job (schedule, command) values ('* * * * *', 'select 1')",
        "update cron.job set command = 'drop table public.jobs'",
        "delete from cron.job",
        "delete from cron.job_run_details",
        "select cron.schedule('evil', '* * * * *', 'drop table public.jobs')",
        "select cron.schedule_in_database('evil', '* * * * *', 'select 1', 'postgres')",
        "select cron.unschedule('chirpbase-reap-leases')",
        "select cron.alter_job(1, command => 'drop table public.jobs')",
    ):
        with pytest.raises(DENIED, match="permission denied for schema cron"):
            as_role(cron_api, role, statement)
    after = cron_db.execute("select jobid, schedule, command from cron.job order by 1").fetchall()
    assert after == before


@pytest.fixture(scope="module")
def seeded_object(owner: psycopg.Connection) -> str:
    """An object in the public generated-images bucket, written like the service would."""
    owner.execute(
        "insert into storage.objects (bucket_id, name, metadata, version)"
        " values ('generated-images', 'seed/tweet-1.png', '{\"size\": 3}', 'v1')"
    )
    return "seed/tweet-1.png"


def _storage_state(owner: psycopg.Connection) -> list[tuple]:
    return owner.execute(
        "select 'bucket', id, public::text, file_size_limit::text, allowed_mime_types::text"
        " from storage.buckets union all"
        " select 'object', bucket_id, name, version, metadata::text from storage.objects"
        " order by 1, 2, 3"
    ).fetchall()


@pytest.mark.parametrize("role", API_ROLES)
def test_generated_images_cannot_be_written_or_listed_through_sql(
    api: psycopg.Connection, owner: psycopg.Connection, seeded_object: str, role: str
) -> None:
    before = _storage_state(owner)
    assert ("object", "generated-images", seeded_object, "v1", '{"size": 3}') in before
    # Writes that RLS refuses outright ...
    for statement in (
        "insert into storage.objects (bucket_id, name) values ('generated-images', 'evil.png')",
        "insert into storage.objects (bucket_id, name) values ('generated-images', 'seed/tweet-1.png')"
        " on conflict (bucket_id, name) do update set version = 'evil'",
        "insert into storage.buckets (id, name, public) values ('evil', 'evil', true)",
    ):
        with pytest.raises(DENIED, match="row-level security"):
            as_role(api, role, statement)
    # ... and the ones it turns into no-ops: no policy means no visible rows.
    for statement in (
        "update storage.objects set version = 'evil', metadata = '{}'",
        "update storage.objects set bucket_id = 'generated-images' where true",
        "delete from storage.objects",
        "update storage.buckets set public = false, allowed_mime_types = array['text/html']",
        "update storage.buckets set file_size_limit = 1e12",
        "delete from storage.buckets",
    ):
        assert as_role(api, role, statement) == 0, statement
    assert as_role(api, role, "select * from storage.objects") == []
    assert as_role(api, role, "select * from storage.buckets") == []
    assert _storage_state(owner) == before


def test_views_run_with_the_callers_rights(owner: psycopg.Connection) -> None:
    """A view owned by `postgres` without security_invoker would read past RLS for anyone
    granted it; every view chirpbase makes runs as its caller."""
    views = owner.execute(
        "select c.relname, coalesce(c.reloptions, '{}') from pg_class c"
        " where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm')"
    ).fetchall()
    assert {"queue_depth", "quota_use"} <= {v for v, _ in views}
    assert [v for v, opts in views if "security_invoker=true" not in opts] == []


@pytest.mark.parametrize("role", API_ROLES)
def test_no_schema_accepts_new_objects_from_the_api_roles(
    api: psycopg.Connection, owner: psycopg.Connection, role: str
) -> None:
    creatable = owner.execute(
        "select nspname from pg_namespace"
        " where nspname not like 'pg_temp%%' and nspname not like 'pg_toast%%'"
        " and has_schema_privilege(%s, oid, 'create')",
        (role,),
    ).fetchall()
    assert creatable == []
    # Shadowing a function the worker calls would be the classic attack; it cannot start.
    for statement in (
        "create table public.evil (x int)",
        "create function public.now() returns timestamptz language sql as 'select null'",
        "create view public.evil as select 1",
        "create function extensions.similarity(text, text) returns real language sql as 'select 1'",
    ):
        with pytest.raises(DENIED, match="permission denied for schema"):
            as_role(api, role, statement)


def test_api_roles_hold_no_dangerous_attribute_or_membership(owner: psycopg.Connection) -> None:
    rows = owner.execute(
        "select rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin,"
        " rolreplication from pg_roles where rolname in ('anon', 'authenticated')"
    ).fetchall()
    assert sorted(rows) == [
        ("anon", False, False, False, False, False, False),
        ("authenticated", False, False, False, False, False, False),
    ]
    memberships = owner.execute(
        "select r.rolname, m.roleid::regrole::text from pg_auth_members m"
        " join pg_roles r on r.oid = m.member where r.rolname in ('anon', 'authenticated')"
    ).fetchall()
    assert memberships == []
    for role in API_ROLES:
        for target in ("service_role", "postgres", "supabase_admin", "authenticator"):
            member = owner.execute("select pg_has_role(%s, %s, 'member')", (role, target))
            assert member.fetchone() == (False,), (role, target)


@pytest.mark.parametrize("role", API_ROLES)
def test_a_jwt_claiming_service_role_changes_nothing(api: psycopg.Connection, role: str) -> None:
    """Privileges follow the database role PostgREST switched to, never the claims' text."""
    forged = {**claims_for(role), "role": "service_role", "is_admin": True}
    with pytest.raises(DENIED, match="permission denied for table jobs"):
        as_role(api, role, "select * from public.jobs", claims=forged)
    with pytest.raises(DENIED, match="permission denied for function enqueue_job"):
        as_role(api, role, "select public.enqueue_job('noop')", claims=forged)
    with pytest.raises(DENIED, match="row-level security"):
        as_role(
            api,
            role,
            "insert into storage.objects (bucket_id, name) values ('generated-images', 'x.png')",
            claims=forged,
        )


@pytest.mark.parametrize("role", API_ROLES)
def test_no_security_definer_function_anywhere_is_reachable(
    owner: psycopg.Connection, role: str
) -> None:
    reachable = owner.execute(
        "select p.oid::regprocedure::text from pg_proc p"
        " where p.prosecdef and has_schema_privilege(%(r)s, p.pronamespace, 'usage')"
        " and has_function_privilege(%(r)s, p.oid, 'execute')",
        {"r": role},
    ).fetchall()
    assert reachable == []


@pytest.mark.parametrize("role", API_ROLES)
def test_other_sessions_query_text_stays_hidden(
    api: psycopg.Connection, owner: psycopg.Connection, role: str
) -> None:
    marker = "select 'chirpbase-private-query-text' as secret, pg_sleep(0)"
    owner.execute(marker)  # now the owner session's last query
    seen = as_role(
        api,
        role,
        "select query from pg_stat_activity where pid <> pg_backend_pid()"
        " and coalesce(query, '') not in ('', '<insufficient privilege>')",
    )
    assert seen == []
