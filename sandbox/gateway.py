"""The sandbox's Supabase gateway: Supabase's URL layout under one base URL.

A Supabase project serves every API from one origin (`https://<ref>.supabase.co`): Realtime at
`/realtime/v1/`, Storage at `/storage/v1/`, and so on. The gateway does the same for the
stand-ins, so the real supabase client works unchanged with

    SUPABASE_URL=http://127.0.0.1:<port>
    SUPABASE_KEY=<sandbox.keys.SERVICE_ROLE_KEY>

* `/realtime/v1/websocket`: the Realtime stand-in (`sandbox/realtime/`).
* `/storage/v1/...`: the Storage stand-in (`sandbox/storage/`), mounted when that package is
  present (imported lazily).
* `/health`: which services are mounted and whether Realtime's change feed is reading.

Run one alone with `python -m sandbox.gateway --port 54321 --dsn postgresql://...` (the DSN's
role must be allowed to create replication slots, e.g. `postgres` or `supabase_admin` on the
local stack).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
from typing import Any

from aiohttp import web
from loguru import logger

from sandbox.keys import verify_key
from sandbox.ports import guard
from sandbox.realtime import REALTIME_STATE, ApiKeyVerifier, create_realtime_app

__all__ = ["GATEWAY_SERVICES", "REALTIME_STATE", "create_gateway", "main"]

GATEWAY_SERVICES: web.AppKey[dict[str, web.Application]] = web.AppKey("gateway_services", dict)
"""The mounted sub-apps by name ("realtime", "storage")."""


def _storage_app(dsn: str, public_base_url: str) -> web.Application | None:
    try:
        module = importlib.import_module("sandbox.storage")
    except ModuleNotFoundError as exc:
        if exc.name != "sandbox.storage":
            raise
        return None
    factory = getattr(module, "create_storage_app", None)
    if factory is None:
        return None
    app = factory(dsn, public_base_url=public_base_url)
    assert isinstance(app, web.Application)
    return app


def create_gateway(
    dsn: str,
    *,
    public_base_url: str = "",
    api_key_verifier: ApiKeyVerifier = verify_key,
    storage: bool = True,
    realtime_options: dict[str, Any] | None = None,
) -> web.Application:
    """One aiohttp app with Supabase's URL layout.

    `public_base_url` is the base URL clients use (e.g. `http://127.0.0.1:54321`); Storage
    builds public object URLs from it. The Realtime stand-in's state (test hooks) is
    `app[REALTIME_STATE]`; every mounted sub-app is in `app[GATEWAY_SERVICES]`.
    `realtime_options` are passed to `create_realtime_app` (poll interval and such).
    """
    app = web.Application()
    services: dict[str, web.Application] = {}

    realtime = create_realtime_app(
        dsn, api_key_verifier=api_key_verifier, **(realtime_options or {})
    )
    app.add_subapp("/realtime/v1/", realtime)
    services["realtime"] = realtime
    app[REALTIME_STATE] = realtime[REALTIME_STATE]

    if storage:
        storage_app = _storage_app(dsn, public_base_url.rstrip("/"))
        if storage_app is not None:
            app.add_subapp("/storage/v1/", storage_app)
            services["storage"] = storage_app
        else:
            logger.info("gateway: sandbox.storage not available; /storage/v1/ not mounted")

    app[GATEWAY_SERVICES] = services

    async def health(_request: web.Request) -> web.Response:
        state = app[REALTIME_STATE]
        body = {
            "sandbox": True,
            "services": sorted(services),
            "realtime": {
                "feed": "up" if state.feed.healthy else "down",
                "connections": len(state.connections),
                "accepting": state.accepting,
            },
        }
        return web.json_response(body, status=200 if state.feed.healthy else 503)

    app.router.add_get("/health", health)
    return app


async def _serve(host: str, port: int, dsn: str, public_base_url: str | None) -> None:
    base = public_base_url or f"http://{host}:{port}"
    app = create_gateway(dsn, public_base_url=base)
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    logger.info("SANDBOX Supabase gateway on {} (SUPABASE_URL={})", base, base)
    logger.info("SUPABASE_KEY: the sandbox service-role key, sandbox.keys.SERVICE_ROLE_KEY")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        logger.info("gateway stopping")
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.gateway", description="SANDBOX Supabase gateway (Realtime, Storage)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=54321)
    parser.add_argument(
        "--dsn",
        default=os.environ.get("CHIRPBASE_SANDBOX_DSN") or os.environ.get("DATABASE_URL"),
        help="database to serve (default: $CHIRPBASE_SANDBOX_DSN or $DATABASE_URL)",
    )
    parser.add_argument(
        "--public-base-url", default=None, help="base URL clients use (default http://host:port)"
    )
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error("--dsn is required (or set CHIRPBASE_SANDBOX_DSN / DATABASE_URL)")
    guard(
        "Supabase gateway stand-in",
        args.host,
        args.port,
        "--port",
        lambda: asyncio.run(_serve(args.host, args.port, args.dsn, args.public_base_url)),
    )


if __name__ == "__main__":
    main()
