"""The Storage stand-in's state (`StorageState`, in `app[STATE_KEY]`): the database pool, the
directory the bytes live in, the upload limit (Storage's `FILE_SIZE_LIMIT`), the public base
URL, the recorded requests and the faults tests inject (`fail_next`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

#: Storage's default global upload limit (`FILE_SIZE_LIMIT`, 50 MB) when no bucket limit is lower.
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024


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
