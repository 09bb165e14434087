"""Bucket routes: `GET /bucket` (`src/http/routes/bucket/getAllBuckets.ts`: the buckets the
caller's role can see) and `GET /bucket/{id}`. Buckets come from migrations, not the API.
"""

from __future__ import annotations

from aiohttp import web
from psycopg import sql

from sandbox.storage.auth import _principal
from sandbox.storage.db import _bucket_json, _fetchall, _find_bucket, _tx
from sandbox.storage.errors import _invalid_request, _no_such_bucket
from sandbox.storage.objects import _like_prefix


async def list_buckets(request: web.Request) -> web.Response:
    """src/http/routes/bucket/getAllBuckets.ts: the buckets the caller's role can see."""
    principal = _principal(request)
    query = request.query
    sort_column = query.get("sortColumn", "name")
    if sort_column not in ("id", "name", "created_at", "updated_at"):
        raise _invalid_request("querystring/sortColumn must be equal to one of the allowed values")
    order = sql.SQL("desc" if query.get("sortOrder", "asc").lower() == "desc" else "asc")
    try:
        limit = int(query["limit"]) if "limit" in query else None
        offset = int(query.get("offset", "0"))
    except ValueError as exc:
        raise _invalid_request("querystring/limit and offset must be integer") from exc
    search = query.get("search", "")
    statement = sql.SQL(
        "select * from storage.buckets where name ilike %s order by {} {} limit %s offset %s"
    ).format(sql.Identifier(sort_column), order)
    async with _tx(request, principal) as conn:
        rows = await _fetchall(conn, statement, (_like_prefix(search), limit, offset))
    return web.json_response([_bucket_json(row) for row in rows])


async def get_bucket(request: web.Request) -> web.Response:
    principal = _principal(request)
    row = await _find_bucket(request, request.match_info["bucket"], principal)
    if row is None:
        raise _no_such_bucket()
    return web.json_response(_bucket_json(row))
