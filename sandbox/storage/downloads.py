"""Downloads: public, authenticated and plain object reads with HEAD, `ETag`, `Cache-Control`,
`Last-Modified`, `If-None-Match` -> 304 and `?download` (`src/http/routes/object/getObject.ts`,
`src/storage/renderer/renderer.ts`), and object info (`getObjectInfo.ts`,
`src/storage/renderer/info.ts`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web

from sandbox.storage.auth import _Principal, _principal
from sandbox.storage.db import _find_bucket, _find_object, _js_time, _metadata
from sandbox.storage.errors import _no_such_bucket
from sandbox.storage.state import STATE_KEY


def _asset_not_found() -> web.Response:
    """src/storage/renderer/renderer.ts: a row without bytes behind it."""
    return web.json_response(
        {
            "error": "Not found",
            "message": "The resource was not found",
            "statusCode": "404",
            "code": "NoSuchKey",
        },
        status=400,
        headers={"Cache-Control": "no-store"},
    )


def _asset_headers(metadata: Mapping[str, Any]) -> dict[str, str]:
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": str(metadata.get("mimetype") or "application/octet-stream"),
        "X-Robots-Tag": "none",
    }
    if etag := metadata.get("eTag"):
        headers["ETag"] = str(etag)
    if cache_control := metadata.get("cacheControl"):
        headers["Cache-Control"] = str(cache_control)
    if isinstance(modified := metadata.get("lastModified"), str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(modified.replace("Z", "+00:00"))
            headers["Last-Modified"] = format_datetime(parsed.astimezone(UTC), usegmt=True)
    return headers


async def _render_asset(request: web.Request, row: Mapping[str, Any]) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    metadata = _metadata(row)
    headers = _asset_headers(metadata)
    if headers.get("ETag") and request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=304, headers={"ETag": headers["ETag"]})
    download = request.query.get("download")
    if download is not None:
        if download == "":
            headers["Content-Disposition"] = "attachment;"
        else:
            encoded = quote(download, safe="")
            headers["Content-Disposition"] = (
                f"attachment; filename={encoded}; filename*=UTF-8''{encoded}"
            )
    try:
        body = await asyncio.to_thread(state.blob_path(str(row["version"])).read_bytes)
    except FileNotFoundError:
        return _asset_not_found()
    content_type = headers.pop("Content-Type")
    response = web.Response(body=body, headers=headers)
    response.headers["Content-Type"] = content_type
    return response


async def _object_for_read(
    request: web.Request, bucket_id: str, name: str, principal: _Principal
) -> dict[str, Any]:
    """src/http/routes/object/getObject.ts: bucket as the service, object under RLS."""
    bucket = await _find_bucket(request, bucket_id)
    if bucket is None or (not principal.authenticated and not bucket.get("public")):
        raise _no_such_bucket()
    reader = None if bucket.get("public") else principal
    return await _find_object(request, bucket_id, name, reader)


async def get_public_object(request: web.Request) -> web.StreamResponse:
    bucket_id = request.match_info["bucket"]
    name = request.match_info["name"]
    bucket = await _find_bucket(request, bucket_id)
    if bucket is None or not bucket.get("public"):
        raise _no_such_bucket()
    row = await _find_object(request, bucket_id, name)
    return await _render_asset(request, row)


async def get_authenticated_object(request: web.Request) -> web.StreamResponse:
    principal = _principal(request)
    row = await _object_for_read(
        request, request.match_info["bucket"], request.match_info["name"], principal
    )
    return await _render_asset(request, row)


async def get_object(request: web.Request) -> web.StreamResponse:
    principal = _principal(request, allow_invalid_jwt=True)
    row = await _object_for_read(
        request, request.match_info["bucket"], request.match_info["name"], principal
    )
    return await _render_asset(request, row)


def _info_handler(
    mode: Literal["public", "authenticated", "any"],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        """src/http/routes/object/getObjectInfo.ts + src/storage/renderer/info.ts."""
        bucket_id = request.match_info["bucket"]
        name = request.match_info["name"]
        if mode == "public":
            bucket = await _find_bucket(request, bucket_id)
            if bucket is None or not bucket.get("public"):
                raise _no_such_bucket()
            row = await _find_object(request, bucket_id, name)
        else:
            principal = _principal(request, allow_invalid_jwt=mode == "any")
            row = await _object_for_read(request, bucket_id, name, principal)
        metadata = _metadata(row)
        body = {
            "id": str(row["id"]),
            "name": row["name"],
            "version": row.get("version"),
            "bucket_id": row["bucket_id"],
            "size": metadata.get("size"),
            "content_type": metadata.get("mimetype"),
            "cache_control": metadata.get("cacheControl"),
            "etag": metadata.get("eTag"),
            "metadata": row.get("user_metadata"),
            "last_modified": _js_time(row.get("updated_at")),
            "created_at": _js_time(row.get("created_at")),
        }
        headers = _asset_headers(metadata)
        headers.pop("Content-Type")
        headers.pop("Accept-Ranges")
        headers.pop("X-Robots-Tag")
        return web.json_response(body, headers=headers)

    return handler
