"""The other object routes: create and update (the uploads' two doors), delete one or many
(`deleteObject.ts`, `deleteObjects.ts`: what RLS lets the caller delete), the folder-style
listing of `listObjects.ts` + `storage.search`, and the clear `NotSupported` answer for what the
stand-in does not implement.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.storage.auth import _principal
from sandbox.storage.db import _fetchall, _fetchone, _find_object, _object_json, _tx
from sandbox.storage.errors import StorageError, _access_denied, _invalid_request
from sandbox.storage.state import STATE_KEY
from sandbox.storage.uploads import _remove_blob, _upload


async def create_object(request: web.Request) -> web.Response:
    return await _upload(request, method="POST")


async def update_object(request: web.Request) -> web.Response:
    return await _upload(request, method="PUT")


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid_request("Body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _invalid_request("body must be object")
    return body


async def delete_objects(request: web.Request) -> web.Response:
    """src/http/routes/object/deleteObjects.ts: deletes what RLS lets the caller delete."""
    state = request.app[STATE_KEY]
    principal = _principal(request)
    bucket_id = request.match_info["bucket"]
    body = await _json_body(request)
    prefixes = body.get("prefixes")
    if (
        not isinstance(prefixes, list)
        or not prefixes
        or not all(isinstance(p, str) for p in prefixes)
    ):
        raise _invalid_request("body/prefixes must NOT have fewer than 1 items")
    if len(prefixes) > 1000:
        raise _invalid_request("Bulk object requests are limited to 1000 objects per request.")
    async with _tx(request, principal, allow_delete=True) as conn:
        rows = await _fetchall(
            conn,
            "delete from storage.objects where bucket_id = %s and name = any(%s) returning *",
            (bucket_id, prefixes),
        )
    for row in rows:
        if row.get("version"):
            await _remove_blob(state.blob_path(str(row["version"])))
    return web.json_response([_object_json(row) for row in rows])


async def delete_object(request: web.Request) -> web.Response:
    """src/http/routes/object/deleteObject.ts."""
    state = request.app[STATE_KEY]
    principal = _principal(request)
    bucket_id = request.match_info["bucket"]
    name = request.match_info["name"]
    await _find_object(request, bucket_id, name)
    async with _tx(request, principal, allow_delete=True) as conn:
        row = await _fetchone(
            conn,
            "delete from storage.objects where bucket_id = %s and name = %s returning version",
            (bucket_id, name),
        )
    if row is None:
        raise _access_denied("Access denied")
    if row.get("version"):
        await _remove_blob(state.blob_path(str(row["version"])))
    return web.json_response({"message": "Successfully deleted"})


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def list_objects(request: web.Request) -> web.Response:
    """src/http/routes/object/listObjects.ts + `storage.search`: one folder level."""
    principal = _principal(request)
    bucket_id = request.match_info["bucket"]
    body = await _json_body(request)
    prefix = body.get("prefix")
    if not isinstance(prefix, str):
        raise _invalid_request("body must have required property 'prefix'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    search = body.get("search") or ""
    limit = body.get("limit") or 100
    offset = body.get("offset") or 0
    sort_by = body.get("sortBy") or {}
    if not isinstance(search, str) or not isinstance(limit, int) or not isinstance(offset, int):
        raise _invalid_request("body/limit, body/offset and body/search have invalid types")
    if not isinstance(sort_by, dict):
        raise _invalid_request("body/sortBy must be object")
    column = sort_by.get("column") or "name"
    if column not in ("name", "updated_at", "created_at", "last_accessed_at"):
        raise _invalid_request("body/sortBy/column must be equal to one of the allowed values")
    descending = str(sort_by.get("order") or "asc").lower() == "desc"
    limit = max(1, min(limit, 1500))

    async with _tx(request, principal) as conn:
        rows = await _fetchall(
            conn,
            "select name, id, updated_at, created_at, last_accessed_at, metadata"
            " from storage.objects where bucket_id = %s and lower(name) like lower(%s)",
            (bucket_id, _like_prefix(prefix + search)),
        )
    folders: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    for row in rows:
        relative = row["name"][len(prefix) :]
        if "/" in relative:
            folder = relative.split("/", 1)[0]
            folders.setdefault(
                folder,
                {
                    "name": folder,
                    "id": None,
                    "updated_at": None,
                    "created_at": None,
                    "last_accessed_at": None,
                    "metadata": None,
                },
            )
        else:
            files.append({**_object_json(row), "name": relative})

    if column == "name":
        entries = sorted(
            [*folders.values(), *files], key=lambda e: e["name"].lower(), reverse=descending
        )
    else:
        ordered_folders = sorted(folders.values(), key=lambda e: e["name"], reverse=descending)
        ordered_files = sorted(files, key=lambda e: e.get(column) or "", reverse=descending)
        entries = [*ordered_folders, *ordered_files]
    return web.json_response(entries[offset : offset + limit])


async def not_supported(request: web.Request) -> web.Response:
    raise StorageError(
        400,
        "NotSupported",
        f"The sandbox Storage API does not implement {request.method} {request.path}",
    )
