"""`chirpbase doctor`: is everything the worker needs in place? One line per check, with the fix.

Checks, in order (each time-boxed; independent ones run concurrently):

    env         Settings load from the environment / .env (names of what is missing, never values)
    database    DATABASE_URL answers
    migrations  every supabase/migrations file is applied (worker.migrate.pending)
    pg_cron     the chirpbase-* schedules exist in cron.job (and pg_cron runs in this database)
    realtime    a Realtime channel on public.jobs reaches SUBSCRIBED (and the table is published)
    storage     the `generated-images` bucket exists and is public
    x           the X credentials work (GET /2/users/me)
    x_access    what the configured X access tier allows (likes and quote posts: Enterprise
                only), whether X refused any of it, and X's rules for automated accounts
    openai      the OpenAI key works (a moderation call: free, generates nothing)

`run_doctor()` returns the results; the CLI prints them (or JSON) and exits 0 only when all pass.
docs/troubleshooting.md explains every failure and its fix.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr, ValidationError

from worker.logs import redact
from worker.ops.doctor.database import _db_checks, _DbFacts, expected_cron_jobs
from worker.ops.doctor.model import (
    BUCKET,
    CHECKS,
    FIX_DB,
    FIX_ENV,
    FIX_OPENAI_NETWORK,
    FIX_REALTIME,
    FIX_REALTIME_PUBLICATION,
    FIX_STORAGE_API,
    FIX_TIMEOUT,
    FIX_X_NETWORK,
    Check,
    DoctorReport,
    _Fail,
)
from worker.ops.doctor.services import (
    _openai_check,
    _storage_api,
    _storage_verdict,
    _x_check,
    realtime_probe,
)

__all__ = [
    "BUCKET",
    "CHECKS",
    "Check",
    "DoctorReport",
    "expected_cron_jobs",
    "realtime_probe",
    "run_doctor",
]


def check_env(settings_factory: Callable[[], Any]) -> tuple[Check, Any]:
    """Load Settings; report the names of missing, empty or invalid variables (never values)."""
    started = time.monotonic()
    try:
        settings = settings_factory()
    except ValidationError as exc:
        missing, invalid = [], []
        for e in exc.errors():
            name = ".".join(str(p) for p in e["loc"]).upper()
            if e["type"] == "missing":
                missing.append(name)
            else:
                invalid.append(f"{name} ({e['msg']})")
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if invalid:
            parts.append("invalid " + ", ".join(invalid))
        return Check("env", "fail", "; ".join(parts), FIX_ENV, time.monotonic() - started), None
    empty = [
        name.upper()
        for name, value in settings
        if isinstance(value, SecretStr) and not value.get_secret_value().strip()
    ]
    if empty:
        return (
            Check("env", "fail", "empty " + ", ".join(empty), FIX_ENV, time.monotonic() - started),
            settings,
        )
    detail = f"settings load (ENVIRONMENT={settings.environment})"
    return Check("env", "ok", detail, None, time.monotonic() - started), settings


async def _boxed(
    name: str, make: Callable[[], Awaitable[Check]], limit: float, secrets: list[str]
) -> Check:
    """Run one check within `limit` seconds; failures become a failed Check (never an exception)."""
    started = time.monotonic()
    try:
        check = await asyncio.wait_for(make(), limit)
    except TimeoutError:
        check = Check(
            name, "fail", f"no answer within {limit:g}s", FIX_TIMEOUT.format(timeout=limit)
        )
    except _Fail as exc:
        check = Check(name, "fail", exc.detail, exc.fix)
    except Exception as exc:
        fixes = {
            "realtime": FIX_REALTIME,
            "storage": FIX_STORAGE_API,
            "x": FIX_X_NETWORK,
            "openai": FIX_OPENAI_NETWORK,
        }
        text = str(exc).strip()
        check = Check(
            name,
            "fail",
            f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
            fixes.get(name),
        )
    check.seconds = time.monotonic() - started
    if not check.ok:  # error texts come from libraries: scrub them (our own texts hold no secret)
        check.detail = _scrub(check.detail, secrets)
    return check


def _scrub(text: str, secrets: list[str]) -> str:
    text = redact(" ".join(text.split()))
    for s in secrets:
        if s and s in text:
            text = text.replace(s, "[REDACTED]")
    return text


async def run_doctor(
    settings_factory: Callable[[], Any] | None = None, *, limit: float = 10.0
) -> DoctorReport:
    """Run every check; each one is bounded by `limit` seconds."""
    if settings_factory is None:
        from worker.settings import Settings

        settings_factory = Settings  # type: ignore[assignment]  # reads the environment and .env
    assert settings_factory is not None
    for noisy in ("realtime", "websockets", "httpx", "httpcore", "tweepy", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    env, settings = check_env(settings_factory)
    if settings is None:
        skipped = [
            Check(name, "skip", "skipped: fix the environment first", FIX_ENV)
            for name in CHECKS[1:]
        ]
        return DoctorReport([env, *skipped])

    secrets = list(settings.secret_values())
    dsn = settings.database_url.get_secret_value()

    async def db_part() -> _DbFacts:
        try:
            return await asyncio.wait_for(asyncio.to_thread(_db_checks, dsn, limit), 2 * limit + 5)
        except Exception as exc:
            text = (
                f"no answer within {2 * limit + 5:g}s"
                if isinstance(exc, TimeoutError)
                else f"{type(exc).__name__}: {exc}"
            )
            return _DbFacts(
                Check("database", "fail", text, FIX_DB),
                Check("migrations", "skip", "skipped: the database check failed", FIX_DB),
                Check("pg_cron", "skip", "skipped: the database check failed", FIX_DB),
                x_access=Check("x_access", "skip", "skipped: the database check failed", FIX_DB),
            )

    db_task = asyncio.create_task(db_part())

    async def realtime() -> Check:
        key = settings.supabase_key.get_secret_value()
        detail = await asyncio.wait_for(realtime_probe(settings.supabase_url, key, limit), limit)
        facts = await asyncio.shield(db_task)  # bounded on its own
        if facts.published is not None and "jobs" not in facts.published:
            raise _Fail(
                "subscribed, but public.jobs is not in the supabase_realtime publication: "
                "no event would ever arrive",
                FIX_REALTIME_PUBLICATION,
            )
        return Check("realtime", "ok", detail)

    async def storage() -> Check:
        api = await asyncio.wait_for(_storage_api(settings, limit), limit)
        return _storage_verdict(api, await asyncio.shield(db_task))

    outer = 2 * limit + 5  # the network part has `limit`; the rest waits for SQL facts
    results = await asyncio.gather(
        _boxed("realtime", realtime, outer, secrets),
        _boxed("storage", storage, outer, secrets),
        _boxed("x", lambda: _x_check(settings, limit), limit, secrets),
        _boxed("openai", lambda: _openai_check(settings, limit), limit, secrets),
    )
    facts = await db_task
    db_checks = [facts.database, facts.migrations, facts.pg_cron]
    access = facts.x_access or Check(
        "x_access", "skip", "skipped: the database is unreachable", FIX_DB
    )
    for c in [*db_checks, access]:
        if not c.ok:
            c.detail = _scrub(c.detail, secrets)
    realtime_check, storage_check, x_check, openai_check = results
    return DoctorReport(
        [env, *db_checks, realtime_check, storage_check, x_check, access, openai_check]
    )
