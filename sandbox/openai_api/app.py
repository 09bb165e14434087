"""The OpenAI stand-in as an aiohttp app (`create_app`), served in-process for tests (`serve`,
`RunningServer`) or alone (`main`, `python -m sandbox.openai_api`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.openai_api.catalog import DEFAULT_API_KEY
from sandbox.openai_api.chat import ChatHandlers
from sandbox.openai_api.control import ControlHandlers
from sandbox.openai_api.handlers import _SHUTDOWN_KEY, STATE_KEY
from sandbox.openai_api.media import MediaHandlers
from sandbox.openai_api.state import OpenAIState
from sandbox.ports import run_app


class _Handlers(ChatHandlers, MediaHandlers, ControlHandlers):
    """Every endpoint of the stand-in, on one app."""


def create_app(state: OpenAIState | None = None) -> web.Application:
    """The stand-in as an aiohttp app. Tests keep ``state`` and drive it directly."""
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[STATE_KEY] = state if state is not None else OpenAIState()
    app[_SHUTDOWN_KEY] = asyncio.Event()
    h = _Handlers(app)

    async def on_shutdown(app: web.Application) -> None:
        app[_SHUTDOWN_KEY].set()

    app.on_shutdown.append(on_shutdown)
    app.router.add_post("/v1/chat/completions", h.chat)
    app.router.add_post("/v1/images/generations", h.images)
    app.router.add_post("/v1/moderations", h.moderations)
    app.router.add_get("/v1/models", h.list_models)
    app.router.add_get("/v1/models/{model}", h.get_model)
    app.router.add_get("/_sandbox/state", h.ctl_state)
    app.router.add_post("/_sandbox/reset", h.ctl_reset)
    app.router.add_get("/_sandbox/requests", h.ctl_requests)
    app.router.add_delete("/_sandbox/requests", h.ctl_clear_requests)
    app.router.add_post("/_sandbox/chat/queue", h.ctl_chat_queue)
    app.router.add_post("/_sandbox/chat/refuse", h.ctl_refuse)
    app.router.add_post("/_sandbox/moderation/flagged-terms", h.ctl_flagged_terms)
    app.router.add_post("/_sandbox/latency", h.ctl_latency)
    app.router.add_post("/_sandbox/faults", h.ctl_faults)
    app.router.add_post("/_sandbox/config", h.ctl_config)
    app.router.add_route("*", "/v1/{tail:.*}", h.not_found)
    return app


@dataclass
class RunningServer:
    url: str
    port: int
    state: OpenAIState
    runner: web.AppRunner = field(repr=False)

    @property
    def base_url(self) -> str:
        """What to give ``OPENAI_BASE_URL`` / ``AsyncOpenAI(base_url=...)``."""
        return f"{self.url}/v1"


@contextlib.asynccontextmanager
async def serve(
    state: OpenAIState | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningServer]:
    """Run the stand-in on ``host:port`` (0 picks a free port) for the duration of the block."""
    state = state if state is not None else OpenAIState()
    runner = web.AppRunner(create_app(state), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    try:
        yield RunningServer(
            url=f"http://{host}:{bound_port}", port=bound_port, state=state, runner=runner
        )
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible stand-in (SANDBOX)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"accepted bearer key (repeatable; default {DEFAULT_API_KEY})",
    )
    parser.add_argument("--chat-latency", type=float, default=0.0, help="seconds per completion")
    parser.add_argument("--image-latency", type=float, default=0.0, help="seconds per image call")
    parser.add_argument(
        "--flag", action="append", default=[], help="term moderation flags (repeatable)"
    )
    args = parser.parse_args(argv)
    state = OpenAIState(api_keys=args.api_keys or (DEFAULT_API_KEY,))
    state.set_latency(chat=args.chat_latency, images=args.image_latency)
    if args.flag:
        state.flag_terms(args.flag)

    run_app(
        create_app(state),
        what="OpenAI stand-in",
        host=args.host,
        port=args.port,
        ready=f"[SANDBOX] OpenAI stand-in on http://{args.host}:{args.port}/v1 "
        f"(keys: {len(state.api_keys)}; control: /_sandbox/state)",
    )
