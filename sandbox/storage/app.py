"""The Storage stand-in as an aiohttp app: the fault and error middleware (Storage's error shape,
`src/http/not-found-handler.ts` for unknown routes), the routes (`create_storage_app`, mounted at
`/storage/v1/`), a standalone server (`create_app`) and `main` (`python -m sandbox.storage`).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from sandbox import localdb
from sandbox.ports import run_app
from sandbox.storage.buckets import get_bucket, list_buckets
from sandbox.storage.downloads import (
    _info_handler,
    get_authenticated_object,
    get_object,
    get_public_object,
)
from sandbox.storage.errors import StorageError, _from_pg
from sandbox.storage.objects import (
    create_object,
    delete_object,
    delete_objects,
    list_objects,
    not_supported,
    update_object,
)
from sandbox.storage.state import (
    DEFAULT_MAX_UPLOAD_BYTES,
    STATE_KEY,
    StorageState,
    _Fault,
    _normalise_base_url,
)
from sandbox.storage.uploads import _drain

log = logging.getLogger("sandbox.storage")


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
