"""`/health` (JSON) and `/metrics` (Prometheus) on one small HTTP port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from worker.logs import redact, redact_value

HealthFn = Callable[[], tuple[bool, dict[str, Any]]]


def create_health_app(health: HealthFn) -> web.Application:
    """`health()` returns (healthy, body); unhealthy answers 503 so orchestrators restart us."""

    async def get_health(_request: web.Request) -> web.Response:
        healthy, body = health()
        return web.Response(
            text=redact(web_json(redact_value(body))),  # values first, then the finished text
            status=200 if healthy else 503,
            content_type="application/json",
        )

    async def get_metrics(_request: web.Request) -> web.Response:
        payload = redact(generate_latest().decode())
        return web.Response(
            text=payload,
            headers={"Content-Type": CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")},
        )

    app = web.Application()
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    return app


def web_json(body: dict[str, Any]) -> str:
    import json

    return json.dumps(body, default=str, separators=(",", ":"))


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the app; returns the runner and the bound port (port 0 picks a free one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:
        bound = int(address[1])
    return runner, bound
