"""doctor: every check green against the sandbox, and each broken piece named with its fix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from sandbox.stack import SandboxStack
from tests import pg
from tests.cli.conftest import Run
from worker.migrate import discover
from worker.ops.cli import app
from worker.ops.doctor import model as doc

BAD_DB_PASSWORD = "s3cret-pw-9921"


async def run_doctor(env: dict[str, str | None], *args: str) -> Run:
    """`chirpbase doctor` in a thread (the stand-ins answer from this test's event loop)."""
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, app, ["doctor", "--timeout", "10", *args], env={"COLUMNS": "200", **env}
    )
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result)


def line(run: Run, title: str) -> str:
    """The output line of one check (by its title)."""
    [found] = [ln for ln in run.out.splitlines() if ln[2:].startswith(title)]
    return found


def fix_after(run: Run, title: str) -> str:
    lines = run.out.splitlines()
    i = lines.index(line(run, title))
    assert lines[i + 1].strip().startswith("fix:"), lines[i + 1]
    return lines[i + 1]


@pytest.fixture(autouse=True)
def no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env: the test's environment is the whole truth


@pytest.fixture
async def stack(admin_dsn: str) -> AsyncIterator[SandboxStack]:
    async with SandboxStack(admin_dsn) as s:
        yield s


async def test_all_green_against_the_sandbox(cron_db: psycopg.Connection) -> None:
    # pg_cron runs in one database per server (`postgres`): the full check needs that one.
    dbname = cron_db.info.dbname
    async with SandboxStack(pg.admin_dsn(dbname)) as stack:
        env: dict[str, str | None] = dict(stack.env(pg.app_dsn(dbname)))
        run = await run_doctor(env)
        assert run.code == 0, run
        titles = [doc.TITLES[name] for name in doc.CHECKS]
        n = len(doc.CHECKS)
        assert [ln[2:].split("  ")[0].strip() for ln in run.out.splitlines()[:n]] == titles
        assert all(ln.startswith("✓ ") for ln in run.out.splitlines()[:n]), run.out
        assert f"{n}/{n} checks passed: all good" in run.out
        assert "authenticated as @chirpbase_bot" in line(run, "X credentials")
        assert "5 chirpbase-* schedules" in line(run, "pg_cron schedules")
        access = line(run, "X access tier")
        assert "tier pay_per_use: " in access and "not on this tier: likes" in access
        assert "'Automated' profile label" in access

        as_json = await run_doctor(env, "--json")
        assert as_json.code == 0
        body = as_json.json()
        assert body["ok"] is True
        assert [(c["name"], c["status"], c["fix"]) for c in body["checks"]] == [
            (name, "ok", None) for name in doc.CHECKS
        ]
        assert all(c["seconds"] < 10 for c in body["checks"])


async def test_wrong_x_secret_fails_the_x_check_with_its_fix(stack: SandboxStack, dsn: str) -> None:
    env: dict[str, str | None] = {**stack.env(dsn), "X_API_SECRET": "not-the-right-secret-7731"}
    run = await run_doctor(env)
    assert run.code == 1, run
    assert line(run, "X credentials").startswith("✗ ")
    assert "HTTP 401" in line(run, "X credentials")
    assert "X_API_SECRET" in fix_after(run, "X credentials")
    assert "not-the-right-secret-7731" not in run.out
    for title in ("environment", "database", "migrations", "Realtime", "Storage bucket"):
        assert line(run, title).startswith("✓ "), run.out
    assert line(run, "OpenAI key").startswith("✓ ")
    # This test database is not the one pg_cron runs in, and doctor says so.
    assert "pg_cron is not enabled in database" in line(run, "pg_cron schedules")
    assert "sync_schedules" in fix_after(run, "pg_cron schedules")

    body = (await run_doctor(env, "--json")).json()
    x = next(c for c in body["checks"] if c["name"] == "x")
    assert body["ok"] is False and x["status"] == "fail" and x["fix"] == doc.FIX_X_AUTH


async def test_unreachable_database_fails_the_database_line(stack: SandboxStack, dsn: str) -> None:
    env: dict[str, str | None] = {
        **stack.env(dsn),
        "DATABASE_URL": f"postgresql://chirp:{BAD_DB_PASSWORD}@127.0.0.1:1/nowhere",
    }
    run = await run_doctor(env)
    assert run.code == 1, run
    db = line(run, "database")
    assert db.startswith("✗ ") and "cannot connect" in db and "Connection refused" in db
    assert "DATABASE_URL" in fix_after(run, "database")
    assert line(run, "migrations").startswith("– ")
    assert "database is unreachable" in line(run, "pg_cron schedules")
    assert line(run, "X credentials").startswith("✓ ")  # the other checks still run
    assert BAD_DB_PASSWORD not in run.out


async def test_pending_migration_fails(stack: SandboxStack, dsn: str, admin_dsn: str) -> None:
    latest = discover()[-1]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            "delete from supabase_migrations.schema_migrations where version = %s",
            (latest.version,),
        )
    run = await run_doctor(dict(stack.env(dsn)))
    assert run.code == 1, run
    assert "✗ migrations" in line(run, "migrations")
    assert f"1 pending: {latest.version}_{latest.name}" in line(run, "migrations")
    assert "supabase db push" in fix_after(run, "migrations")


async def test_private_bucket_fails_the_storage_check(
    stack: SandboxStack, dsn: str, admin_dsn: str
) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("update storage.buckets set public = false where id = 'generated-images'")
    run = await run_doctor(dict(stack.env(dsn)))
    assert run.code == 1
    assert "exists but is not public" in line(run, "Storage bucket")
    assert "set public = true" in fix_after(run, "Storage bucket")


async def test_missing_environment_names_the_variables_never_values() -> None:
    env: dict[str, str | None] = {
        "X_API_KEY": None,
        "OPENAI_API_KEY": None,
        "X_API_SECRET": "a-secret-value-that-must-not-print",
        "X_ACCESS_TOKEN": "1-token",
        "X_ACCESS_TOKEN_SECRET": "token-secret",
        "X_BEARER_TOKEN": "bearer",
        "SUPABASE_URL": "not-a-url",
        "SUPABASE_KEY": "key",
        "DATABASE_URL": "postgresql://localhost/x",
    }
    run = await run_doctor(env)
    assert run.code == 1
    env_line = line(run, "environment")
    assert env_line.startswith("✗ ")
    assert "missing X_API_KEY, OPENAI_API_KEY" in env_line
    assert "invalid SUPABASE_URL (Value error, must be an http(s) URL)" in env_line
    assert ".env.example" in fix_after(run, "environment")
    assert "a-secret-value-that-must-not-print" not in run.out
    skipped = len(doc.CHECKS) - 1
    assert sum(ln.startswith("– ") for ln in run.out.splitlines()) == skipped
    body = (await run_doctor(env, "--json")).json()
    assert [c["status"] for c in body["checks"]] == ["fail"] + ["skip"] * skipped
