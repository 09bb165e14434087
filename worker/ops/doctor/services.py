"""Probes of the services the worker talks to: Realtime, Storage, X and OpenAI."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from worker.ops.doctor.database import _DbFacts
from worker.ops.doctor.model import (
    BUCKET,
    FIX_BUCKET_MISSING,
    FIX_BUCKET_PRIVATE,
    FIX_ENV,
    FIX_OPENAI_AUTH,
    FIX_OPENAI_NETWORK,
    FIX_OPENAI_QUOTA,
    FIX_REALTIME,
    FIX_STORAGE_API,
    FIX_X_AUTH,
    FIX_X_NETWORK,
    FIX_X_RATE,
    Check,
    _Fail,
)


async def realtime_probe(url: str, key: str, limit: float) -> str:
    """Subscribe to INSERTs on public.jobs and wait for SUBSCRIBED; returns a description.

    A one-shot version of worker/runtime/doorbell.py's session (same client options: no
    reconnects of its own). Raises `_Fail` with the reason otherwise.
    """
    from realtime import RealtimeSubscribeStates
    from realtime.types import RealtimePostgresChangesListenEvent as PgEvent

    from supabase import AsyncClientOptions, acreate_client

    states: asyncio.Queue[tuple[Any, Exception | None]] = asyncio.Queue()

    def on_state(state: Any, error: Exception | None) -> None:
        states.put_nowait((state, error))

    options = AsyncClientOptions(
        auto_refresh_token=False,
        persist_session=False,
        realtime={"auto_reconnect": False, "max_retries": 1},
    )
    started = time.monotonic()
    client = await acreate_client(url, key, options=options)
    try:
        channel = client.channel("chirpbase-doctor")
        channel.on_postgres_changes(PgEvent.Insert, lambda _p: None, table="jobs", schema="public")
        await asyncio.wait_for(channel.subscribe(on_state), limit)
        left = max(0.1, limit - (time.monotonic() - started))
        state, error = await asyncio.wait_for(states.get(), left)
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            reason = f": {error}" if error else ""
            raise _Fail(f"channel ended {state.value}{reason}", FIX_REALTIME)
        return f"subscribed to public.jobs in {1000 * (time.monotonic() - started):.0f} ms"
    finally:
        rt = client.realtime
        with contextlib.suppress(Exception):
            if rt.is_connected:
                await asyncio.wait_for(rt.remove_all_channels(), 2.0)
            await asyncio.wait_for(rt.close(), 2.0)
        with contextlib.suppress(Exception):
            await client.auth.close()


@dataclass
class _BucketApi:
    public: bool | None = None
    not_found: bool = False
    error: str | None = None


async def _storage_api(settings: Any, limit: float) -> _BucketApi:
    """The bucket as the Storage API sees it (GET /storage/v1/bucket/generated-images)."""
    import httpx

    from supabase import AsyncClientOptions, acreate_client

    out = _BucketApi()
    http = httpx.AsyncClient(timeout=httpx.Timeout(limit), follow_redirects=True)
    try:
        client = await acreate_client(
            settings.supabase_url,
            settings.supabase_key.get_secret_value(),
            AsyncClientOptions(httpx_client=http, auto_refresh_token=False, persist_session=False),
        )
        try:
            bucket = await client.storage.get_bucket(BUCKET)
            out.public = bool(getattr(bucket, "public", False))
        except Exception as exc:
            status = str(getattr(exc, "status", "") or getattr(exc, "statusCode", "") or "")
            text = str(getattr(exc, "message", "") or exc)
            out.not_found = status in ("404", "400") and "not found" in text.lower()
            out.error = f"{type(exc).__name__}: {text}" + (f" (HTTP {status})" if status else "")
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        await http.aclose()
    return out


def _storage_verdict(api: _BucketApi, facts: _DbFacts | None) -> Check:
    sql_public = facts.bucket_public if facts is not None and facts.bucket_known else None
    sql_missing = facts is not None and facts.bucket_known and facts.bucket_public is None
    if api.public is True:
        return Check("storage", "ok", f"bucket {BUCKET} exists and is public")
    if api.public is False or sql_public is False:
        raise _Fail(f"bucket {BUCKET} exists but is not public", FIX_BUCKET_PRIVATE)
    if api.not_found or sql_missing:
        raise _Fail(f"bucket {BUCKET} does not exist", FIX_BUCKET_MISSING)
    extra = (
        " (the bucket row exists in storage.buckets, so the Storage API is what fails)"
        if sql_public is True
        else ""
    )
    raise _Fail(f"Storage API error: {api.error}{extra}", FIX_STORAGE_API)


async def _x_check(settings: Any, limit: float) -> Check:
    from worker.clients.x import (
        XAuthError,
        XClient,
        XError,
        XNetworkError,
        XRateLimited,
        XUsageCapped,
    )

    try:
        client = XClient.from_settings(
            settings,
            timeout=limit,
            connect_timeout=min(5.0, limit),
            read_attempts=1,
            max_workers=1,
        )
    except ValueError as exc:
        raise _Fail(str(exc), FIX_ENV) from None
    try:
        me = await client.me()
    except XAuthError as exc:
        raise _Fail(f"GET /2/users/me refused: {exc}", FIX_X_AUTH) from None
    except (XRateLimited, XUsageCapped) as exc:
        raise _Fail(f"GET /2/users/me: {exc}", FIX_X_RATE) from None
    except XNetworkError as exc:
        raise _Fail(f"GET /2/users/me: {exc}", FIX_X_NETWORK) from None
    except XError as exc:
        raise _Fail(f"GET /2/users/me failed: {exc}", FIX_X_NETWORK) from None
    finally:
        await client.aclose()
    return Check("x", "ok", f"authenticated as @{me.username} (id {me.id})")


async def _openai_check(settings: Any, limit: float) -> Check:
    from worker.clients.ai import (
        AIAuthError,
        AIClient,
        AIError,
        AIQuotaExhausted,
        AIUnavailable,
        RetryPolicy,
    )

    policy = RetryPolicy(max_attempts=1, request_timeout=limit, connect_timeout=min(5.0, limit))
    try:
        client = AIClient.from_settings(settings, retry=policy)
    except ValueError as exc:
        raise _Fail(str(exc), FIX_ENV) from None
    try:
        result = await client.moderate("chirpbase doctor: checking the API key")
    except AIAuthError as exc:
        raise _Fail(str(exc), FIX_OPENAI_AUTH) from None
    except AIQuotaExhausted as exc:
        raise _Fail(str(exc), FIX_OPENAI_QUOTA) from None
    except AIUnavailable as exc:
        raise _Fail(str(exc), FIX_OPENAI_NETWORK) from None
    except AIError as exc:
        raise _Fail(str(exc), FIX_OPENAI_NETWORK) from None
    finally:
        await client.aclose()
    return Check("openai", "ok", f"key accepted (moderation with {result.model}, no charge)")
