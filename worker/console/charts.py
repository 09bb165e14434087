"""The report's charts, live: the same analysis and drawings as `chirpbase report`.

A chart set is computed on request from the database (worker.report: SQL aggregates, pandas,
matplotlib, all imported only here, on first use) and kept for `TTL_S` seconds per period, so a
page of four images costs one analysis. Drawing runs in a thread, one set at a time.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from worker.console.core import CONSOLE, Console, error_page
from worker.ops.operator import Unavailable

TTL_S = 60.0
PERIODS = {"7d": "7 days", "30d": "30 days", "90d": "90 days", "all": "all time"}
TITLES = {
    "engagement_over_time_png": "Engagement over time",
    "best_times_heatmap_png": "Best times to post",
    "image_vs_no_image_png": "Do images help?",
    "top_tweets_png": "Top tweets",
}


@dataclass
class ChartSet:
    made_at: float
    images: dict[str, bytes]
    summary: dict[str, Any]
    empty: bool


class ChartCache:
    def __init__(self) -> None:
        self._sets: dict[str, ChartSet] = {}
        self._lock = asyncio.Lock()

    async def get(self, console: Console, since: str) -> ChartSet:
        async with self._lock:
            cached = self._sets.get(since)
            if cached is not None and time.monotonic() - cached.made_at < TTL_S:
                return cached
            made = await asyncio.to_thread(_draw, console, since)
            self._sets[since] = made
            return made


def _draw(console: Console, since: str) -> ChartSet:
    from worker.report import charts
    from worker.report.analysis import analyse, load, parse_since

    until = datetime.now(UTC)
    start = parse_since(since, until)
    try:
        with console.db.connection() as conn:
            raw_tweets, raw_daily, counts = load(conn, start, until)
    except Exception as exc:
        raise Unavailable(f"cannot read the report data ({type(exc).__name__})") from None
    a = analyse(raw_tweets, raw_daily, start, until, counts)
    images: dict[str, bytes] = {}
    if not a.empty:
        with tempfile.TemporaryDirectory(prefix="chirpbase-console-") as tmp:
            for name, path in charts.render_all(a, Path(tmp)).items():
                images[name.removesuffix("_png")] = path.read_bytes()
    return ChartSet(time.monotonic(), images, dict(a.summary), a.empty)


CHARTS = web.AppKey("charts", ChartCache)


def _since(request: web.Request) -> str:
    since = request.query.get("since", "30d")
    return since if since in PERIODS else "30d"


async def charts_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    since = _since(request)
    try:
        made = await request.app[CHARTS].get(console, since)
        waiting = (await console.call(lambda op: op.inbox_state()))["waiting"]
    except Unavailable as exc:
        return error_page(request, exc)
    charts = [
        {"name": name.removesuffix("_png"), "title": title}
        for name, title in TITLES.items()
        if name.removesuffix("_png") in made.images
    ]
    return console.render(
        request,
        "charts.html",
        current="charts",
        since=since,
        periods=PERIODS,
        charts=charts,
        summary=made.summary,
        empty=made.empty,
        waiting=waiting,
        version=int(made.made_at),
    )


async def chart_image(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    made = await request.app[CHARTS].get(console, _since(request))
    image = made.images.get(request.match_info["name"])
    if image is None:
        raise web.HTTPNotFound(text="no such chart for this period (not enough data?)")
    return web.Response(body=image, content_type="image/png")


def add_routes(app: web.Application) -> None:
    app[CHARTS] = ChartCache()
    app.router.add_get("/charts", charts_page, name="charts")
    app.router.add_get(r"/charts/{name:[a-z_]+}.png", chart_image, name="chart_image")
