"""Uploads, in the real server's order (`src/storage/uploader.ts`): bucket lookup, mime type
(`validateMimeType`), declared size, permission as the caller (`canUpload`: the row written in a
rolled-back transaction) and duplicate check, then the bytes (`completeUpload`); multipart (a
`file` part plus `cacheControl`/`metadata` fields) or a raw body; object keys as
`src/storage/limits.ts` allows them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from aiohttp import BodyPartReader, web
from psycopg.types.json import Jsonb

from sandbox.storage.auth import _Principal, _principal
from sandbox.storage.db import _fetchone, _find_bucket, _js_time, _tx
from sandbox.storage.errors import (
    StorageError,
    _entity_too_large,
    _invalid_key,
    _invalid_mime_type,
    _key_already_exists,
    _no_content,
    _no_such_bucket,
)
from sandbox.storage.state import STATE_KEY

MAX_USER_METADATA_BYTES = 1024 * 1024
_CHUNK = 256 * 1024


# src/storage/limits.ts: VALID_OBJECT_KEY
_VALID_OBJECT_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]*$")
_EMPTY_FOLDER_PLACEHOLDER = ".emptyFolderPlaceholder"


def _validate_mime_type(mime: str, allowed: list[str]) -> None:
    """src/storage/uploader.ts: validateMimeType (exact `type/subtype` or `type/*`)."""
    requested = mime.split("/")
    if len(requested) < 2:
        raise _invalid_mime_type(mime)
    kind, ext = requested[0], requested[1]
    for allowed_mime in allowed:
        parts = allowed_mime.split("/")
        if len(parts) < 2:
            continue
        if parts[0] == kind and parts[1] in ("*", ext):
            return
    raise _invalid_mime_type(mime)


def _must_be_valid_key(name: str) -> None:
    if not name or not _VALID_OBJECT_KEY.match(name):
        raise _invalid_key(name)


@dataclass
class _Incoming:
    mime: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    read: Callable[[int], Awaitable[bytes]]
    """Read up to `n` bytes of the file body; b"" at the end."""


async def _read_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        data += chunk
        if len(data) > MAX_USER_METADATA_BYTES:
            raise StorageError(
                413,
                "EntityTooLarge",
                "The user_metadata exceeded the maximum allowed size",
                "Payload too large",
            )
    return data.decode("utf-8", errors="replace")


async def _incoming_upload(
    request: web.Request, name: str, bucket: Mapping[str, Any], max_size: int
) -> _Incoming:
    """src/storage/uploader.ts: fileUploadFromRequest."""
    allowed = bucket.get("allowed_mime_types") or []
    check_mime = bool(allowed) and not name.endswith(_EMPTY_FOLDER_PLACEHOLDER)
    content_type = request.headers.get("Content-Type", "")

    if content_type.startswith("multipart/form-data"):
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError) as exc:
            raise _no_content() from exc
        fields: dict[str, str] = {}
        file_part: BodyPartReader | None = None
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise _no_content()
            if part.filename is not None:
                file_part = part
                break
            if part.name:
                fields[part.name] = await _read_field(part)
        if file_part is None:
            raise _no_content()
        mime = (
            fields.get("contentType")
            or file_part.headers.get("Content-Type")
            or "application/octet-stream"
        )
        cache_time = fields.get("cacheControl")
        cache_control = f"max-age={cache_time}" if cache_time else "no-cache"
        if check_mime:
            _validate_mime_type(mime, allowed)
        user_metadata: dict[str, Any] | None = None
        custom = fields.get("metadata") or fields.get("userMetadata")
        if custom:
            with contextlib.suppress(ValueError):
                parsed = json.loads(custom)
                user_metadata = parsed if isinstance(parsed, dict) else None
        return _Incoming(mime, cache_control, user_metadata, file_part.read_chunk)

    mime = content_type or "application/octet-stream"
    cache_control = request.headers.get("Cache-Control") or "no-cache"
    if check_mime:
        _validate_mime_type(mime, allowed)
    if request.content_length is not None and request.content_length > max_size:
        raise _entity_too_large()
    user_metadata = None
    if raw := request.headers.get("x-metadata"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(base64.b64decode(raw).decode())
            user_metadata = parsed if isinstance(parsed, dict) else None
    return _Incoming(mime, cache_control, user_metadata, request.content.read)


async def _read_body(incoming: _Incoming, max_size: int) -> bytes | None:
    """The whole file, or None when it is larger than `max_size`."""
    data = bytearray()
    while chunk := await incoming.read(_CHUNK):
        data += chunk
        if len(data) > max_size:
            return None
    return bytes(data)


async def _drain(request: web.Request, limit: int) -> None:
    """Swallow the rest of a refused body so the client gets our answer, not a reset."""
    seen = 0
    with contextlib.suppress(Exception):
        while seen <= limit and (chunk := await request.content.readany()):
            seen += len(chunk)


async def _check_permission(
    request: web.Request,
    principal: _Principal,
    bucket_id: str,
    name: str,
    upsert: bool,
    metadata: dict[str, Any],
) -> None:
    """src/storage/uploader.ts: canUpload, i.e. the row write as the caller, rolled back."""
    owner_id = principal.sub
    owner = owner_id if owner_id and _is_uuid(owner_id) else None
    insert = (
        "insert into storage.objects"
        " (bucket_id, name, owner, owner_id, metadata, user_metadata, version)"
        " values (%s, %s, %s, %s, %s, %s, '1')"
    )
    if upsert:
        insert += (
            " on conflict (bucket_id, name) do update set metadata = excluded.metadata,"
            " user_metadata = excluded.user_metadata, version = excluded.version,"
            " owner = excluded.owner, owner_id = excluded.owner_id"
        )
    params = (bucket_id, name, owner, owner_id, Jsonb(metadata), None)
    try:
        async with _tx(request, principal, force_rollback=True) as conn:
            await conn.execute(insert, params)
    except psycopg.errors.UniqueViolation as exc:
        raise _key_already_exists() from exc


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def _write_blob(path: Path, data: bytes) -> None:
    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    await asyncio.to_thread(write)


async def _remove_blob(path: Path) -> None:
    await asyncio.to_thread(path.unlink, True)


async def _upload(request: web.Request, *, method: Literal["POST", "PUT"]) -> web.Response:
    try:
        return await _upload_object(request, method=method)
    except (StorageError, psycopg.Error):
        # Refused before the body was read (bucket, mime, RLS, duplicate): swallow the rest
        # so the client reads our error instead of a broken pipe.
        await _drain(request, request.app[STATE_KEY].max_upload_bytes)
        raise


async def _upload_object(request: web.Request, *, method: Literal["POST", "PUT"]) -> web.Response:
    state = request.app[STATE_KEY]
    principal = _principal(request)
    bucket_id = request.match_info["bucket"]
    name = request.match_info["name"]
    upsert = method == "PUT" or request.headers.get("x-upsert") == "true"

    bucket = await _find_bucket(request, bucket_id)
    if bucket is None:
        raise _no_such_bucket()
    max_size = state.max_upload_bytes
    if isinstance(bucket.get("file_size_limit"), int):
        max_size = min(max_size, bucket["file_size_limit"])
    if name.endswith(_EMPTY_FOLDER_PLACEHOLDER):
        max_size = 0

    incoming = await _incoming_upload(request, name, bucket, max_size)
    _must_be_valid_key(name)
    await _check_permission(
        request,
        principal,
        bucket_id,
        name,
        upsert,
        {"mimetype": incoming.mime, "contentLength": request.content_length},
    )

    data = await _read_body(incoming, max_size)
    if data is None:
        raise _entity_too_large()

    version = str(uuid.uuid4())
    now = datetime.now(UTC)
    metadata = {
        "eTag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
        "size": len(data),
        "mimetype": incoming.mime,
        "cacheControl": incoming.cache_control,
        "lastModified": _js_time(now),
        "contentLength": len(data),
        "httpStatusCode": 200,
    }
    blob = state.blob_path(version)
    await _write_blob(blob, data)
    try:
        object_id, previous_version = await _complete_upload(
            request, principal, bucket_id, name, upsert, version, metadata, incoming.user_metadata
        )
    except BaseException:
        await _remove_blob(blob)
        raise
    if previous_version:
        await _remove_blob(state.blob_path(previous_version))
    return web.json_response({"Id": object_id, "Key": f"{bucket_id}/{name}"})


async def _complete_upload(
    request: web.Request,
    principal: _Principal,
    bucket_id: str,
    name: str,
    upsert: bool,
    version: str,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
) -> tuple[str, str | None]:
    """src/storage/uploader.ts: completeUpload, as the service (object lock, then write)."""
    owner_id = principal.sub
    owner = owner_id if owner_id and _is_uuid(owner_id) else None
    async with _tx(request, None) as conn:
        await conn.execute(
            "select pg_advisory_xact_lock(hashtext(%s))", (f"storage:{bucket_id}/{name}",)
        )
        current = await _fetchone(
            conn,
            "select id, version from storage.objects where bucket_id = %s and name = %s for update",
            (bucket_id, name),
        )
        if current is not None and not upsert:
            raise _key_already_exists()
        if current is not None:
            row = await _fetchone(
                conn,
                "update storage.objects set metadata = %s, user_metadata = %s, version = %s,"
                " owner = %s, owner_id = %s, updated_at = now(), last_accessed_at = now()"
                " where id = %s returning id",
                (
                    Jsonb(metadata),
                    Jsonb(user_metadata or {}),
                    version,
                    owner,
                    owner_id,
                    current["id"],
                ),
            )
        else:
            row = await _fetchone(
                conn,
                "insert into storage.objects"
                " (bucket_id, name, owner, owner_id, metadata, user_metadata, version)"
                " values (%s, %s, %s, %s, %s, %s, %s) returning id",
                (
                    bucket_id,
                    name,
                    owner,
                    owner_id,
                    Jsonb(metadata),
                    Jsonb(user_metadata or {}),
                    version,
                ),
            )
    assert row is not None
    previous = current["version"] if current is not None else None
    return str(row["id"]), previous
