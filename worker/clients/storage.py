"""chirpbase's Supabase Storage client: the `generated-images` bucket.

Built on supabase-py's async client (`acreate_client(SUPABASE_URL, SUPABASE_KEY).storage`),
created on first use. Uploads always upsert: names are content-addressed
(`worker.content.images.fit_for_x` gives `yyyy/mm/<sha256-16>.jpg`), so writing the same path again
writes the same bytes, and a retried job is harmless.

What Supabase Storage sends back (github.com/supabase/storage, `src/http/error-handler.ts`):
errors are JSON `{"statusCode": "<code>", "error", "message"}` and the HTTP status is 400 for
every 4xx-class error and 500 for 500; storage3 raises `StorageApiError` with the *body's*
`statusCode` as `status`. So a retry decision looks at that code, not at the HTTP status:
statusCode >= 500 (500 internal, 503 read-only database or lock timeout, 544 database timeout),
429 (too many database connections) and 408, plus network errors (httpx `TransportError`), are
retried with exponential backoff and jitter; anything else (413 too large, 415 mime type, 403
RLS / bad key, 404) fails at once.

Every error raised is an `ImageStoreError` with a `retryable` flag (true for "the service is
unavailable right now"); messages never contain the key and the library's exception is not
chained (its request, headers included, would otherwise travel with the traceback).
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx
from loguru import logger
from storage3.exceptions import StorageApiError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from worker.metrics import API_CALLS

if TYPE_CHECKING:
    from storage3 import AsyncStorageClient
    from storage3._async.file_api import AsyncBucketProxy

    from supabase import AsyncClient
    from worker.content.images import FittedImage
    from worker.settings import Settings

__all__ = [
    "BUCKET",
    "ImageNotFound",
    "ImageStore",
    "ImageStoreError",
    "ImageStoreRejected",
    "ImageStoreUnavailable",
    "StorageRetryPolicy",
]

#: The public bucket chirpbase's migrations create.
BUCKET = "generated-images"
#: max-age for content-addressed names (their bytes never change): one year.
IMMUTABLE_MAX_AGE = 31_536_000
DEFAULT_MAX_AGE = 3600

T = TypeVar("T")
_log = logger.bind(service="storage")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class ImageStoreError(Exception):
    """Base of every error `ImageStore` raises. `retryable`: running the job later can help."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.attempts = attempts


class ImageStoreUnavailable(ImageStoreError):
    """5xx, 429 or a network failure, still failing after the bounded retries."""

    retryable = True


class ImageStoreRejected(ImageStoreError):
    """Storage refused the request (size limit, mime type, permission, bad key, no bucket)."""


class ImageNotFound(ImageStoreError):
    """No object at that path."""


@dataclass(frozen=True)
class StorageRetryPolicy:
    attempts: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    request_timeout: float = 30.0
    connect_timeout: float = 5.0


def _status(exc: StorageApiError) -> int | None:
    try:
        return int(exc.status)
    except (TypeError, ValueError):
        return None


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, StorageApiError):
        status = _status(exc)
        return status is not None and (status >= 500 or status in (408, 429))
    return False


def _is_not_found(exc: StorageApiError) -> bool:
    # Storage's NoSuchKey: statusCode "404", error "not_found" (NoSuchBucket says
    # "Bucket not found" and is a configuration problem, not a missing image).
    return _status(exc) == 404 and exc.code in ("not_found", "Not found", "InternalError")


def _sniff_mime(data: bytes, path: str) -> str:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


class ImageStore:
    """Upload, check and fetch images in one Storage bucket (default `generated-images`)."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        bucket: str = BUCKET,
        retry: StorageRetryPolicy | None = None,
        client: AsyncClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.retry = retry or StorageRetryPolicy()
        self._key = key
        self._client = client
        self._owns_client = client is None
        self._http: httpx.AsyncClient | None = None
        self._storage_client: AsyncStorageClient | None = None
        self._lock = asyncio.Lock()
        self._backoff = wait_exponential_jitter(
            multiplier=self.retry.initial_backoff,
            max=self.retry.max_backoff,
            jitter=self.retry.jitter,
        )

    def __repr__(self) -> str:  # never the key
        return f"ImageStore(url={self.url!r}, bucket={self.bucket!r})"

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ImageStore:
        return cls(settings.supabase_url, settings.supabase_key.get_secret_value(), **kwargs)

    # -- public API ----------------------------------------------------------------------------

    async def upload(
        self,
        path: str,
        data: bytes,
        content_type: str,
        *,
        max_age: int = DEFAULT_MAX_AGE,
    ) -> str:
        """Write `data` at `path` (overwriting) and return its public URL."""

        async def call(bucket: AsyncBucketProxy) -> None:
            # storage3 pops keys out of file_options: a fresh dict for every attempt.
            options: Any = {
                "content-type": content_type,
                "cache-control": str(max_age),
                "upsert": "true",
            }
            await bucket.upload(path, data, options)

        await self._call("upload", path, call)
        return await self.public_url(path)

    async def upload_png(self, path: str, data: bytes, *, max_age: int = DEFAULT_MAX_AGE) -> str:
        return await self.upload(path, data, "image/png", max_age=max_age)

    async def upload_image(self, image: FittedImage) -> str:
        """Upload a `fit_for_x` result under its content-addressed name, cacheable for a year."""
        return await self.upload(image.filename, image.data, image.mime, max_age=IMMUTABLE_MAX_AGE)

    async def exists(self, path: str) -> bool:
        async def call(bucket: AsyncBucketProxy) -> bool:
            return await bucket.exists(path)

        return await self._call("exists", path, call)

    async def download(self, path: str) -> tuple[bytes, str]:
        """The object's bytes and mime type (from the bytes themselves, else the name)."""

        async def call(bucket: AsyncBucketProxy) -> bytes:
            return await bucket.download(path)

        data = await self._call("download", path, call)
        return data, _sniff_mime(data, path)

    async def public_url(self, path: str) -> str:
        return await (await self._bucket()).get_public_url(path)

    async def aclose(self) -> None:
        """Close the HTTP connections this store opened (not those of a client passed in)."""
        http, self._http = self._http, None
        self._storage_client = None
        if self._owns_client:
            self._client = None
        if http is not None:
            await http.aclose()

    # -- internals -----------------------------------------------------------------------------

    async def _bucket(self) -> AsyncBucketProxy:
        if self._storage_client is None:
            async with self._lock:
                if self._storage_client is None:
                    if self._client is None:
                        from supabase import AsyncClientOptions, acreate_client

                        # Our own httpx client: explicit timeouts, and closed by aclose().
                        self._http = httpx.AsyncClient(
                            timeout=httpx.Timeout(
                                self.retry.request_timeout, connect=self.retry.connect_timeout
                            ),
                            follow_redirects=True,
                        )
                        self._client = await acreate_client(
                            self.url, self._key, AsyncClientOptions(httpx_client=self._http)
                        )
                    self._storage_client = self._client.storage
        return self._storage_client.from_(self.bucket)

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text

    def _log_retry(self, op: str, path: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            _log.warning(
                "storage {} of {!r} failed (attempt {}): {}; retrying",
                op,
                path,
                state.attempt_number,
                self._redact(self._describe(exc)),
            )

        return before_sleep

    @staticmethod
    def _describe(exc: BaseException | None) -> str:
        if isinstance(exc, StorageApiError):
            return f"{exc.status} {exc.code}: {exc.message}"
        if exc is None:
            return "unknown error"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    async def _call(self, op: str, path: str, fn: Callable[[AsyncBucketProxy], Awaitable[T]]) -> T:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_is_retryable),
                stop=stop_after_attempt(self.retry.attempts),
                wait=self._backoff,
                before_sleep=self._log_retry(op, path),
                reraise=True,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    result = await fn(await self._bucket())
        except StorageApiError as exc:
            API_CALLS.labels("storage", op, str(exc.status)).inc()
            raise self._error(op, path, exc, attempts) from None
        except httpx.TransportError as exc:
            API_CALLS.labels("storage", op, "network").inc()
            raise ImageStoreUnavailable(
                self._redact(
                    f"storage {op} of {path!r} in bucket {self.bucket!r} failed after "
                    f"{attempts} attempt(s): {self._describe(exc)}"
                ),
                attempts=attempts,
            ) from None
        API_CALLS.labels("storage", op, "ok").inc()
        return result

    def _error(self, op: str, path: str, exc: StorageApiError, attempts: int) -> ImageStoreError:
        status = _status(exc)
        message = self._redact(
            f"storage {op} of {path!r} in bucket {self.bucket!r} failed"
            f"{f' after {attempts} attempts' if attempts > 1 else ''}: {self._describe(exc)}"
        )
        kind: type[ImageStoreError]
        if _is_retryable(exc):
            kind = ImageStoreUnavailable
        elif _is_not_found(exc):
            kind = ImageNotFound
        else:
            kind = ImageStoreRejected
        return kind(message, status=status, code=exc.code, attempts=attempts)
