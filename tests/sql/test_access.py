"""RLS and privileges: the API roles (anon, authenticated) can touch nothing; service_role can.

Supabase's default privileges grant everything new in `public` to anon and authenticated, so
these tests enumerate what the migrations created rather than trusting a list: a new table
without RLS or a new function without a revoke fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.sql.helpers import scalar

API_ROLES = ("anon", "authenticated")
CHIRPBASE_VIEWS = {"queue_depth", "quota_use"}

_RELATIONS = """
select c.relname, c.relkind
from pg_class c
where c.relnamespace = 'public'::regnamespace
  and c.relkind in ('r', 'p', 'v', 'm', 'f')
  and pg_get_userbyid(c.relowner) = 'postgres'
  and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
order by 1
"""

_FUNCTIONS = """
select p.oid::regprocedure::text, p.proname, p.prosecdef, p.proconfig, p.prokind,
       p.prorettype = 'trigger'::regtype as is_trigger,
       coalesce(array(select format_type(t, null) from unnest(p.proargtypes) t), '{}') as args
from pg_proc p
where p.pronamespace = 'public'::regnamespace
  and p.proowner = 'postgres'::regrole
  and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
order by 1
"""


@pytest.fixture(scope="module")
def admin(shared_admin_dsn: str) -> Iterator[psycopg.Connection]:
    """Superuser connection to the module's clone (it switches roles like PostgREST)."""
    with psycopg.connect(shared_admin_dsn, autocommit=True) as c:
        yield c


def _relations(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(_RELATIONS)]


def _tables(conn: psycopg.Connection) -> list[str]:
    return [name for name, kind in _relations(conn) if kind in ("r", "p")]


def _functions(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(_FUNCTIONS).fetchall()


def _as_role(
    conn: psycopg.Connection, role: str, statement: sql.Composable | str, claims: bool
) -> None:
    """Run one statement as `role` in a transaction, as PostgREST would (then roll back)."""
    with conn.transaction(force_rollback=True):
        if claims:
            jwt = {"role": role, "iss": "supabase", "aud": role}
            if role == "authenticated":
                jwt["sub"] = "00000000-0000-0000-0000-000000000001"
            conn.execute(
                "select set_config('request.jwt.claims', %s, true),"
                " set_config('request.method', 'POST', true)",
                (json.dumps(jwt),),
            )
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute(statement)  # type: ignore[arg-type]


def _first_column(conn: psycopg.Connection, table: str) -> str:
    return scalar(
        conn,
        "select attname from pg_attribute where attrelid = ('public.' || %s)::regclass"
        " and attnum > 0 and not attisdropped and attidentity = '' and attgenerated = ''"
        " order by attnum limit 1",
        (table,),
    )


def test_the_expected_objects_are_enumerated(shared_conn: psycopg.Connection) -> None:
    relations = dict(_relations(shared_conn))
    assert {
        "configs",
        "tweets",
        "replies",
        "stats",
        "scheduled_tweets",
        "jobs",
        "job_kinds",
        "api_usage",
        "quota_usage",
        "alerts",
        "x_account",
    } <= set(relations)
    assert {n for n, k in relations.items() if k == "v"} >= CHIRPBASE_VIEWS
    names = {f[1] for f in _functions(shared_conn)}
    assert {
        "enqueue_job",
        "claim_jobs",
        "heartbeat_jobs",
        "complete_job",
        "complete_jobs",
        "fail_job",
        "snooze_job",
        "release_jobs",
        "holds_lease",
        "reap_expired_leases",
        "consume_quota",
        "sync_schedules",
    } <= names


def test_every_table_has_rls_and_no_policy_for_the_api_roles(
    shared_conn: psycopg.Connection,
) -> None:
    no_rls = shared_conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace"
        " and relkind in ('r', 'p') and not relrowsecurity"
    ).fetchall()
    assert no_rls == []
    open_policies = shared_conn.execute(
        "select tablename, policyname, roles from pg_policies where schemaname = 'public'"
        " and roles && array['anon', 'authenticated', 'public']::name[]"
    ).fetchall()
    assert open_policies == []


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_hold_no_privilege_on_tables_views_or_sequences(
    shared_conn: psycopg.Connection, role: str
) -> None:
    granted = shared_conn.execute(
        "select c.relname, c.relkind from pg_class c"
        " where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')"
        " and has_table_privilege(%(role)s, c.oid,"
        " 'select, insert, update, delete, truncate, references, trigger')"
        " union all"
        " select c.relname, c.relkind from pg_class c"
        " where c.relnamespace = 'public'::regnamespace and c.relkind = 'S'"
        " and case when c.relkind = 'S'"
        " then has_sequence_privilege(%(role)s, c.oid, 'usage, select, update') end",
        {"role": role},
    ).fetchall()
    assert granted == []


@pytest.mark.parametrize("claims", [False, True], ids=["set-role", "jwt-claims"])
@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_cannot_read_or_write_any_table_or_view(
    admin: psycopg.Connection, role: str, claims: bool
) -> None:
    relations = _relations(admin)
    assert relations
    for name, kind in relations:
        table = sql.Identifier("public", name)
        col = sql.Identifier(_first_column(admin, name))
        statements = {
            "select": sql.SQL("select * from {} limit 1").format(table),
            "insert": sql.SQL("insert into {} default values").format(table),
            "update": sql.SQL("update {t} set {c} = {c}").format(t=table, c=col),
            "delete": sql.SQL("delete from {}").format(table),
        }
        for op, statement in statements.items():
            with pytest.raises(psycopg.Error) as exc:
                _as_role(admin, role, statement, claims)
            err = exc.value
            if kind == "v" and op != "select":
                # Aggregating views are not updatable at all: refused before any privilege check.
                assert isinstance(
                    err,
                    psycopg.errors.InsufficientPrivilege
                    | psycopg.errors.ObjectNotInPrerequisiteState
                    | psycopg.errors.FeatureNotSupported,
                ), (name, op, err)
            else:
                assert isinstance(err, psycopg.errors.InsufficientPrivilege), (name, op, str(err))
                assert "permission denied" in str(err), (name, op, str(err))


def _call(name: str, args: list[str]) -> sql.Composable:
    """`select public.f(null::t1, ...)`: the privilege check comes before any argument check."""
    params = sql.SQL(", ").join(sql.SQL("null::{}").format(sql.SQL(a)) for a in args)
    return sql.SQL("select {}({})").format(sql.Identifier("public", name), params)


@pytest.mark.parametrize("claims", [False, True], ids=["set-role", "jwt-claims"])
@pytest.mark.parametrize("role", [*API_ROLES, "public"])
def test_no_function_is_executable_by_the_api_roles(
    admin: psycopg.Connection, role: str, claims: bool
) -> None:
    functions = _functions(admin)
    assert len(functions) >= 30
    if role == "public":
        # PUBLIC's implicit EXECUTE must be revoked too (any role created later inherits it).
        with_public = [
            f[0]
            for f in functions
            if scalar(
                admin,
                "select coalesce(bool_or(a.grantee = 0), true) from pg_proc p,"
                " lateral aclexplode(p.proacl) a where p.oid = %s::regprocedure",
                (f[0],),
            )
            is not False
        ]
        assert with_public == []
        return
    executable = [
        f[0]
        for f in functions
        if scalar(admin, "select has_function_privilege(%s, %s, 'execute')", (role, f[0]))
    ]
    assert executable == [], f"{role} may execute: {executable}"
    for signature, name, *_, args in functions:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied") as exc:
            _as_role(admin, role, _call(name, args), claims)
        assert f"function {name}" in str(exc.value), (signature, str(exc.value))


def test_a_new_function_without_a_revoke_would_be_caught(shared_conn: psycopg.Connection) -> None:
    """The enumeration above is not a hard-coded list: a forgotten revoke shows up."""
    with shared_conn.transaction(force_rollback=True):
        shared_conn.execute(
            "create function public.forgot_to_revoke() returns int language sql as 'select 1'"
        )
        names = [f[1] for f in _functions(shared_conn)]
        assert "forgot_to_revoke" in names
        assert (
            scalar(
                shared_conn,
                "select has_function_privilege('anon', 'public.forgot_to_revoke()', 'execute')",
            )
            is True
        )


def test_security_definer_functions_pin_an_empty_search_path(
    shared_conn: psycopg.Connection,
) -> None:
    functions = _functions(shared_conn)
    definers = [f for f in functions if f[2]]
    assert len(definers) >= 20
    unsafe = [f[0] for f in definers if 'search_path=""' not in (f[3] or [])]
    assert unsafe == []
    # The helpers that are not security definer pin it too (no search_path capture at all).
    assert [f[0] for f in functions if 'search_path=""' not in (f[3] or [])] == []


def test_service_role_can_read_and_write(admin: psycopg.Connection) -> None:
    for name, _kind in _relations(admin):
        _as_role(
            admin,
            "service_role",
            sql.SQL("select * from {} limit 1").format(sql.Identifier("public", name)),
            claims=True,
        )
    missing = admin.execute(
        "select c.relname from pg_class c where c.relnamespace = 'public'::regnamespace"
        " and c.relkind in ('r', 'p') and not has_table_privilege('service_role', c.oid,"
        " 'select, insert, update, delete')"
        " union all select p.oid::regprocedure::text from pg_proc p"
        " where p.pronamespace = 'public'::regnamespace and p.proowner = 'postgres'::regrole"
        " and not has_function_privilege('service_role', p.oid, 'execute')"
    ).fetchall()
    assert missing == []

    with admin.transaction(force_rollback=True):
        admin.execute("set local role service_role")
        job_id = scalar(admin, "select public.enqueue_job('noop', '{\"via\": \"service\"}')")
        [(claimed,)] = admin.execute(
            "select id from public.claim_jobs('edge', array['noop'], 1)"
        ).fetchall()
        assert claimed == job_id
        tok = scalar(admin, "select lease_token from public.jobs where id = %s", (job_id,))
        assert scalar(admin, "select public.complete_job(%s, 'edge', %s)", (job_id, tok)) is True
        admin.execute("insert into public.configs (key, value) values ('svc_note', '{}')")
        admin.execute("update public.configs set value = '{\"a\": 1}' where key = 'svc_note'")
        admin.execute("delete from public.configs where key = 'svc_note'")
        tweet = scalar(
            admin, "insert into public.scheduled_tweets (content) values ('hi') returning job_id"
        )
        assert tweet is not None
        admin.execute("insert into public.replies (reply_id, author_id) values ('svc-1', 'u')")
        assert scalar(admin, "select count(*) from public.queue_depth") >= 1
        assert (
            scalar(admin, "select count(*) from public.quota_use") == 4
        )  # posts, reads, openai_usd, spend_usd


# storage and realtime ---------------------------------------------------------------------------


def test_generated_images_bucket(shared_conn: psycopg.Connection) -> None:
    row = shared_conn.execute(
        "select name, public, file_size_limit, allowed_mime_types from storage.buckets"
        " where id = 'generated-images'"
    ).fetchone()
    assert row is not None
    name, public, size_limit, mime_types = row
    assert name == "generated-images" and public is True
    assert 0 < size_limit <= 50 * 1024 * 1024
    assert {"image/png", "image/jpeg"} <= set(mime_types)
    assert all(m.startswith("image/") for m in mime_types)


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_cannot_upload_to_the_bucket(admin: psycopg.Connection, role: str) -> None:
    upload = (
        "insert into storage.objects (bucket_id, name, metadata)"
        " values ('generated-images', 'evil.png', '{}')"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        _as_role(admin, role, upload, claims=True)
    bucket = "insert into storage.buckets (id, name, public) values ('mine', 'mine', true)"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        _as_role(admin, role, bucket, claims=True)


def test_jobs_and_configs_are_in_the_realtime_publication(shared_conn: psycopg.Connection) -> None:
    tables = {
        r[0]
        for r in shared_conn.execute(
            "select tablename from pg_publication_tables"
            " where pubname = 'supabase_realtime' and schemaname = 'public'"
        )
    }
    assert {"jobs", "configs"} <= tables
