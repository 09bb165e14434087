"""A Supabase Storage-compatible HTTP API, backed by the real `storage` schema in Postgres.

`create_storage_app(dsn, public_base_url=...)` returns an aiohttp sub-application meant to be
mounted at `/storage/v1/` (the gateway does that; `create_app` does it for a standalone server),
so `supabase.acreate_client("http://host:port", key).storage` works against it unchanged.

What it copies from Supabase Storage (github.com/supabase/storage, `src/http/routes/object`,
`src/http/routes/bucket`, `src/storage/uploader.ts`, `src/internal/errors/codes.ts`,
`src/http/error-handler.ts`):

- Buckets are rows of `storage.buckets`; objects are rows of `storage.objects` (metadata
  `eTag, size, mimetype, cacheControl, lastModified, contentLength, httpStatusCode`, a fresh
  `version` per write); the bytes live on disk, one file per version.
- Uploads: `POST /object/{bucket}/{name}` (create; `x-upsert: true` to overwrite) and
  `PUT /object/{bucket}/{name}` (always upsert), multipart (what the clients send: a `file`
  part plus `cacheControl`/`metadata` fields) or a raw body. The bucket's `allowed_mime_types`
  (with `type/*` wildcards) and `file_size_limit` are enforced, in the same order as the real
  server: bucket lookup, mime type, declared size, permission (RLS) and duplicate check, then
  the bytes.
- Permissions are Postgres's own: the check inserts the row inside a rolled-back transaction
  as the JWT's role (`set local role`, `request.jwt.claims`), so RLS decides exactly as it
  does on Supabase. With chirpbase's setup (RLS on, no policy) only `service_role` can write.
- Errors render like Storage: JSON `{"statusCode": "<code>", "code", "error", "message"}`
  with HTTP status 400 for every 4xx-class error and 500 for 500 (Storage's
  `userStatusCode`), e.g. a duplicate is HTTP 400 with `"statusCode": "409"`.
- Downloads: `GET /object/public/{bucket}/{name}` (no auth; public buckets only),
  `GET /object/authenticated/{bucket}/{name}`, `GET /object/{bucket}/{name}`, HEAD on each,
  `GET /object/info[/public|/authenticated]/{bucket}/{name}`; `ETag`, `Cache-Control`,
  `Last-Modified`, `If-None-Match` → 304, `?download`.
- `GET /bucket`, `GET /bucket/{id}`, `POST /object/list/{bucket}` (folder-style listing like
  `storage.search`), `DELETE /object/{bucket}` (`{"prefixes": [...]}`), `DELETE
  /object/{bucket}/{name}`.

Not implemented (clear `NotSupported` error): signed URLs, move/copy, image transformations,
TUS/S3 protocols, bucket creation through the API (buckets come from migrations).

Auth: the role comes from `Authorization: Bearer <jwt>` (or the `apikey` header when there is
no Authorization header), checked with `sandbox.keys.verify_key`. A present but invalid
`apikey` is refused with HTTP 401, as Supabase's API gateway does, rendered in Storage's error
shape so the storage client can parse it. Public object URLs need no key, as on Supabase.

Sandbox only: `StorageState` (in `app[STATE_KEY]`) records requests and can inject faults
(`fail_next`) so clients' retry paths can be tested.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
import shutil
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import psycopg
from aiohttp import BodyPartReader, web
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from sandbox import localdb
from sandbox.keys import InvalidKey, verify_key
from sandbox.ports import run_app

__all__ = [
    "STATE_KEY",
    "StorageError",
    "StorageState",
    "create_app",
    "create_storage_app",
    "main",
]

log = logging.getLogger("sandbox.storage")

#: Storage's default global upload limit (`FILE_SIZE_LIMIT`, 50 MB) when no bucket limit is lower.
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_USER_METADATA_BYTES = 1024 * 1024
_CHUNK = 256 * 1024
_KNOWN_ROLES = frozenset({"anon", "authenticated", "service_role"})
_BEARER = re.compile(r"^Bearer\s+", re.IGNORECASE)
# src/storage/limits.ts: VALID_OBJECT_KEY
_VALID_OBJECT_KEY = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]*$")
_EMPTY_FOLDER_PLACEHOLDER = ".emptyFolderPlaceholder"
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


# -- errors ----------------------------------------------------------------------------------


class StorageError(Exception):
    """An error rendered the way Supabase Storage renders its `StorageBackendError`s."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        error: str | None = None,
        *,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.error = error or code
        # error-handler.ts: userStatusCode is 500 for 500s and 400 for everything else.
        self.http_status = http_status or (500 if status == 500 else 400)

    def body(self) -> dict[str, str]:
        return {
            "statusCode": str(self.status),
            "code": self.code,
            "error": self.error,
            "message": self.message,
        }

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.http_status)


def _no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found")


def _no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", "not_found")


def _access_denied(message: str, *, http_status: int | None = None) -> StorageError:
    return StorageError(
        403, "AccessDenied", message or "Access denied", "Unauthorized", http_status=http_status
    )


def _key_already_exists() -> StorageError:
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", "Duplicate")


def _entity_too_large() -> StorageError:
    return StorageError(
        413,
        "EntityTooLarge",
        "The object exceeded the maximum allowed size",
        "Payload too large",
    )


def _invalid_mime_type(mime: str) -> StorageError:
    return StorageError(
        415, "InvalidMimeType", f"mime type {mime} is not supported", "invalid_mime_type"
    )


def _invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def _invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def _no_content(message: str = "No content provided") -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def _from_pg(exc: psycopg.Error) -> StorageError:
    """src/storage/database/errors.ts: DBError.fromDBError."""
    state = exc.sqlstate or ""
    text = str(exc)
    if state == "42501":
        message = (
            "new row violates row-level security policy" if "row-level security" in text else text
        )
        return _access_denied(message)
    if state == "23505":
        return StorageError(
            409, "ResourceAlreadyExists", "The resource already exists", "Duplicate"
        )
    if state == "57014":
        return StorageError(
            544,
            "DatabaseTimeout",
            "The connection to the database timed out",
            http_status=544,
        )
    if state == "25006":
        return StorageError(
            503,
            "DatabaseReadOnly",
            "The database is currently in read-only mode. Please try again later.",
        )
    return StorageError(500, "DatabaseError", f"database error, code: {state or 'unknown'}")


# -- state -----------------------------------------------------------------------------------


@dataclass
class _Fault:
    status: int
    http_status: int
    method: str | None
    path_contains: str | None
    disconnect: bool

    def matches(self, request: web.Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        return self.path_contains is None or self.path_contains in request.path


@dataclass
class StorageState:
    """What tests drive in-process: request log, fault injection, paths and URLs."""

    dsn: str
    public_base_url: str
    data_dir: Path
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    pool: AsyncConnectionPool | None = None
    #: (method, path) of recent requests, newest last.
    requests: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=10_000))
    _faults: deque[_Fault] = field(default_factory=deque)

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 503,
        http_status: int | None = None,
        method: str | None = None,
        path_contains: str | None = None,
        disconnect: bool = False,
    ) -> None:
        """Make the next `count` matching requests fail before they reach the handler.

        `status` is the `statusCode` in the Storage error body; the HTTP status defaults to
        what Storage would send (500 for 500, 400 otherwise) unless `http_status` is given
        (a proxy's 502/503/504). `disconnect=True` drops the connection without a response.
        """
        for _ in range(count):
            self._faults.append(
                _Fault(
                    status=status,
                    http_status=http_status or (500 if status == 500 else 400),
                    method=method,
                    path_contains=path_contains,
                    disconnect=disconnect,
                )
            )

    def clear_faults(self) -> None:
        self._faults.clear()

    def take_fault(self, request: web.Request) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(request):
                self._faults.remove(fault)
                return fault
        return None

    def public_url(self, bucket: str, name: str) -> str:
        return f"{self.public_base_url}/object/public/{quote(bucket)}/{quote(name)}"

    def blob_path(self, version: str) -> Path:
        # Versions are server-made UUIDs: no user input ever reaches the file system path.
        return self.data_dir / "objects" / version[:2] / version


STATE_KEY: web.AppKey[StorageState] = web.AppKey("chirpbase_storage_state", StorageState)


def _normalise_base_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/storage/v1") else f"{url}/storage/v1"


# -- auth ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Principal:
    role: str
    claims: Mapping[str, object]
    authenticated: bool

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


_UNAUTHENTICATED = _Principal(role="anon", claims={"role": "anon"}, authenticated=False)


def _principal(request: web.Request, *, allow_invalid_jwt: bool = False) -> _Principal:
    """src/http/plugins/jwt.ts, behind the API gateway's apikey check."""
    apikey = request.headers.get("apikey")
    if apikey is not None:
        try:
            verify_key(apikey)
        except InvalidKey as exc:
            raise StorageError(
                401, "AccessDenied", "Invalid API key", "Unauthorized", http_status=401
            ) from exc

    auth = request.headers.get("Authorization", "")
    token = _BEARER.sub("", auth).strip() if auth else (apikey or "")
    if not token:
        if allow_invalid_jwt:
            return _UNAUTHENTICATED
        raise _access_denied("Invalid Compact JWS")
    try:
        claims = verify_key(token)
    except InvalidKey as exc:
        if allow_invalid_jwt:
            return _UNAUTHENTICATED
        raise _access_denied(str(exc)) from exc
    role = claims.get("role")
    if not isinstance(role, str) or role not in _KNOWN_ROLES:
        raise _access_denied("Access denied: Invalid role", http_status=403)
    return _Principal(role=role, claims=claims, authenticated=True)


# -- database --------------------------------------------------------------------------------


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


# -- serialisation ---------------------------------------------------------------------------


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


# -- uploads ---------------------------------------------------------------------------------


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


# -- downloads -------------------------------------------------------------------------------


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


# -- other object routes ---------------------------------------------------------------------


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


# -- buckets ---------------------------------------------------------------------------------


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


# -- middleware and app ----------------------------------------------------------------------


async def _fault_response(request: web.Request, fault: _Fault) -> web.StreamResponse:
    if fault.disconnect:
        if request.transport is not None:
            request.transport.close()
        # Never sent: aiohttp finds the transport closed and just logs the access.
        return web.Response(status=503)
    await _drain(request, request.app[STATE_KEY].max_upload_bytes)
    error = StorageError(
        fault.status,
        "InternalError" if fault.status >= 500 else "SlowDown",
        "sandbox fault injection",
        http_status=fault.http_status,
    )
    return error.response()


@web.middleware
async def _storage_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    state.requests.append((request.method, request.path))
    fault = state.take_fault(request)
    if fault is not None:
        return await _fault_response(request, fault)
    try:
        return await handler(request)
    except StorageError as exc:
        return exc.response()
    except psycopg.Error as exc:
        if exc.sqlstate is None:
            log.warning("storage database unavailable: %s", exc)
        return _from_pg(exc).response()
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        # src/http/not-found-handler.ts
        return web.json_response(
            {
                "statusCode": "404",
                "error": "Not Found",
                "message": f"Route {request.method}:{request.path_qs} not found",
                "code": "InvalidRequest",
            },
            status=404,
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("storage request failed: %s %s", request.method, request.path)
        return StorageError(500, "InternalError", "Internal server error").response()


def create_storage_app(
    dsn: str,
    *,
    public_base_url: str,
    data_dir: Path | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    pool_max_size: int = 8,
) -> web.Application:
    """The Storage API as a sub-app to mount at `/storage/v1/`.

    `dsn` is a connection string for a role that bypasses RLS and is a member of `anon`,
    `authenticated` and `service_role` (chirpbase's local `postgres`, or `supabase_admin`).
    `public_base_url` is the URL clients use for the project (e.g. `http://127.0.0.1:54321`;
    `/storage/v1` is appended unless present). Bytes go under `data_dir` (a temporary folder,
    removed at cleanup, when None).
    """
    owns_dir = data_dir is None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="chirpbase-storage-"))
    state = StorageState(
        dsn=dsn,
        public_base_url=_normalise_base_url(public_base_url),
        data_dir=data_dir,
        max_upload_bytes=max_upload_bytes,
    )
    app = web.Application(middlewares=[_storage_errors])
    app[STATE_KEY] = state

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        state.data_dir.mkdir(parents=True, exist_ok=True)
        pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_max_size,
            open=False,
            name="sandbox-storage",
            kwargs={"application_name": "chirpbase-sandbox-storage", "autocommit": True},
        )
        await pool.open(wait=True, timeout=15)
        state.pool = pool
        try:
            yield
        finally:
            state.pool = None
            await pool.close()
            if owns_dir:
                shutil.rmtree(state.data_dir, ignore_errors=True)

    app.cleanup_ctx.append(lifecycle)

    name = "{name:.+}"
    add = app.router.add_route
    add("GET", "/bucket", list_buckets)
    add("GET", "/bucket/", list_buckets)
    add("GET", "/bucket/{bucket}", get_bucket)
    add("POST", "/object/list/{bucket}", list_objects)
    add("GET", f"/object/info/public/{{bucket}}/{name}", _info_handler("public"))
    add("GET", f"/object/info/authenticated/{{bucket}}/{name}", _info_handler("authenticated"))
    add("GET", f"/object/info/{{bucket}}/{name}", _info_handler("any"))
    app.router.add_get(f"/object/public/{{bucket}}/{name}", get_public_object)
    app.router.add_get(f"/object/authenticated/{{bucket}}/{name}", get_authenticated_object)
    for method, path in (
        ("POST", f"/object/sign/{{bucket}}/{name}"),
        ("POST", "/object/sign/{bucket}"),
        ("GET", f"/object/sign/{{bucket}}/{name}"),
        ("POST", f"/object/upload/sign/{{bucket}}/{name}"),
        ("PUT", f"/object/upload/sign/{{bucket}}/{name}"),
        ("POST", "/object/move"),
        ("POST", "/object/copy"),
        ("POST", "/object/list-v2/{bucket}"),
        ("GET", "/render/{tail:.*}"),
        ("POST", "/bucket"),
        ("PUT", "/bucket/{bucket}"),
        ("DELETE", "/bucket/{bucket}"),
        ("POST", "/bucket/{bucket}/empty"),
    ):
        add(method, path, not_supported)
    app.router.add_get(f"/object/{{bucket}}/{name}", get_object)
    add("POST", f"/object/{{bucket}}/{name}", create_object)
    add("PUT", f"/object/{{bucket}}/{name}", update_object)
    add("DELETE", f"/object/{{bucket}}/{name}", delete_object)
    add("DELETE", "/object/{bucket}", delete_objects)
    return app


def create_app(
    dsn: str,
    *,
    public_base_url: str,
    data_dir: Path | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> web.Application:
    """A root app with only Storage mounted at `/storage/v1/` (standalone server, tests)."""
    storage = create_storage_app(
        dsn, public_base_url=public_base_url, data_dir=data_dir, max_upload_bytes=max_upload_bytes
    )
    root = web.Application()
    root[STATE_KEY] = storage[STATE_KEY]
    root.add_subapp("/storage/v1/", storage)
    return root


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.storage",
        description="SANDBOX Supabase Storage API (serves /storage/v1/ on this port).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=54330)
    parser.add_argument(
        "--dsn",
        default=None,
        help="database holding storage.buckets/storage.objects"
        " (default: the local stack's postgres database, on $CHIRPBASE_PG_PORT)",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="where object bytes live")
    parser.add_argument("--public-base-url", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    base = args.public_base_url or f"http://{args.host}:{args.port}"
    app = create_app(
        args.dsn or localdb.app_dsn("postgres"), public_base_url=base, data_dir=args.data_dir
    )
    run_app(
        app,
        what="Storage stand-in",
        host=args.host,
        port=args.port,
        ready=f"[sandbox] Storage API on http://{args.host}:{args.port}/storage/v1/",
    )


if __name__ == "__main__":
    main()
