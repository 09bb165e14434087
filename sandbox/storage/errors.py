"""Errors rendered as Supabase Storage renders them: `StorageError` (JSON `{"statusCode", "code",
"error", "message"}`, HTTP 400 for every 4xx-class error and 500 for 500, as `userStatusCode`
does), one builder per error code used (`src/internal/errors/codes.ts`,
`src/http/error-handler.ts`), and database errors mapped as `DBError.fromDBError` maps them
(`src/storage/database/errors.ts`).
"""

from __future__ import annotations

import psycopg
from aiohttp import web


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
