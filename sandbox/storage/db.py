"""The database side of Storage: the pool, transactions as the caller's role (`set local role`,
`request.jwt.claims`, so RLS decides as it does on Supabase), bucket and object lookups, and the
rows of `storage.buckets` / `storage.objects` rendered as Storage's JSON.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from aiohttp import web
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from sandbox.storage.auth import _Principal
from sandbox.storage.errors import StorageError, _no_such_key
from sandbox.storage.state import STATE_KEY

_OBJECT_COLUMNS = (
    "name",
    "bucket_id",
    "owner",
    "owner_id",
    "version",
    "id",
    "updated_at",
    "created_at",
    "last_accessed_at",
    "metadata",
    "user_metadata",
)


def _pool(request: web.Request) -> AsyncConnectionPool:
    pool = request.app[STATE_KEY].pool
    if pool is None:
        raise StorageError(500, "InternalError", "storage database pool is not open")
    return pool


@contextlib.asynccontextmanager
async def _tx(
    request: web.Request,
    principal: _Principal | None,
    *,
    force_rollback: bool = False,
    allow_delete: bool = False,
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction as the pool's (RLS-bypassing) user, or as `principal`'s role under RLS."""
    async with _pool(request).connection() as conn, conn.transaction(force_rollback=force_rollback):
        if principal is not None:
            await conn.execute(sql.SQL("set local role {}").format(sql.Identifier(principal.role)))
            await conn.execute(
                "select set_config('request.jwt.claims', %s, true),"
                " set_config('request.jwt.claim.role', %s, true),"
                " set_config('request.jwt.claim.sub', %s, true)",
                (json.dumps(dict(principal.claims)), principal.role, principal.sub or ""),
            )
        if allow_delete:
            # Supabase protects storage tables against direct deletes (migration 0055).
            await conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
        yield conn


async def _fetchone(
    conn: psycopg.AsyncConnection[Any], query: str, params: tuple[Any, ...] = ()
) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def _fetchall(
    conn: psycopg.AsyncConnection[Any], query: str | sql.Composed, params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _find_bucket(
    request: web.Request, bucket_id: str, principal: _Principal | None = None
) -> dict[str, Any] | None:
    async with _tx(request, principal) as conn:
        return await _fetchone(conn, "select * from storage.buckets where id = %s", (bucket_id,))


async def _find_object(
    request: web.Request, bucket_id: str, name: str, principal: _Principal | None = None
) -> dict[str, Any]:
    async with _tx(request, principal) as conn:
        row = await _fetchone(
            conn,
            "select * from storage.objects where bucket_id = %s and name = %s",
            (bucket_id, name),
        )
    if row is None:
        raise _no_such_key()
    return row


def _js_time(value: object) -> str | None:
    """Dates the way Storage's JSON serialiser writes them (`Date.toISOString()`)."""
    if not isinstance(value, datetime):
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _bucket_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        # bucketSchema types `owner` as a string: fast-json-stringify writes null as "".
        "owner": str(row.get("owner") or ""),
        "public": bool(row.get("public")),
        "type": row.get("type") or "STANDARD",
        "file_size_limit": row.get("file_size_limit"),
        "allowed_mime_types": row.get("allowed_mime_types"),
        "created_at": _js_time(row.get("created_at")),
        "updated_at": _js_time(row.get("updated_at")),
    }


def _object_json(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in _OBJECT_COLUMNS:
        if column not in row:
            continue
        value = row[column]
        if isinstance(value, datetime):
            value = _js_time(value)
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[column] = value
    return out


def _metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    metadata = row.get("metadata")
    return metadata if isinstance(metadata, dict) else {}
