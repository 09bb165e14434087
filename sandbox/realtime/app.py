"""The Realtime stand-in as an aiohttp app (`create_realtime_app`), mounted by the gateway at
`/realtime/v1/`; the feed starts with the app and its slot is dropped on cleanup.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from sandbox.realtime.protocol import _websocket
from sandbox.realtime.state import REALTIME_STATE, ApiKeyVerifier, RealtimeState


def create_realtime_app(
    dsn: str,
    *,
    api_key_verifier: ApiKeyVerifier,
    poll_interval: float = 0.004,
    idle_interval: float = 0.25,
    force_flush: bool = True,
    idle_timeout: float = 60.0,
) -> web.Application:
    """The Realtime stand-in as an aiohttp app serving `/websocket` (mount at `/realtime/v1/`).

    `dsn` must be allowed to create replication slots (superuser or REPLICATION), as Realtime's
    own connection is. The feed starts with the app and its slot is dropped on cleanup.
    """
    app = web.Application()
    state = RealtimeState(
        dsn,
        api_key_verifier,
        poll_interval=poll_interval,
        idle_interval=idle_interval,
        force_flush=force_flush,
        idle_timeout=idle_timeout,
    )
    app[REALTIME_STATE] = state

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.start()
        yield
        await state.stop()

    async def on_shutdown(_app: web.Application) -> None:
        # Open websockets would hold the runner's graceful shutdown for its whole timeout.
        state.accepting = False
        await state.close_connections(1001, "server shutting down")

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/websocket", _websocket)
    return app
