"""The report's charts, live: the same analysis and drawings as `chirpbase report`.

The page needs the analysis (worker.report: SQL aggregates and pandas, imported here on first
use, never by a worker that does not show charts); each image is drawn when the browser asks
for it (matplotlib), so the page shows before the drawings are done. Both are kept for `TTL_S`
seconds per period; the work runs in threads, one analysis at a time.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from worker.console.core import CONSOLE, Console, error_page
from worker.ops.operator import Unavailable

TTL_S = 60.0
PERIODS = {"7d": "7 days", "30d": "30 days", "90d": "90 days", "all": "all time"}
TITLES = {
    "engagement_over_time": "Engagement over time",
    "best_times_heatmap": "Best times to post",
    "image_vs_no_image": "Do images help?",
    "top_tweets": "Top tweets",
}


@dataclass
class Analysed:
    made_at: float
    analysis: Any
    charts: list[str]
    images: dict[str, bytes] = field(default_factory=dict)


class ChartCache:
    def __init__(self) -> None:
        self._sets: dict[str, Analysed] = {}
        self._lock = asyncio.Lock()
        self._draw_lock = asyncio.Lock()

    async def analysed(self, console: Console, since: str) -> Analysed:
        async with self._lock:
            cached = self._sets.get(since)
            if cached is not None and time.monotonic() - cached.made_at < TTL_S:
                return cached
            made = await asyncio.to_thread(_analyse, console, since)
            self._sets[since] = made
            return made

    async def image(self, console: Console, since: str, name: str) -> bytes | None:
        made = await self.analysed(console, since)
        if name not in made.charts:
            return None
        async with self._draw_lock:  # matplotlib: one drawing at a time
            if name not in made.images:
                made.images[name] = await asyncio.to_thread(_draw, made.analysis, name)
        return made.images[name]


def _analyse(console: Console, since: str) -> Analysed:
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
    names = [] if a.empty else [n.removesuffix("_png") for n in charts.applicable(a)]
    return Analysed(time.monotonic(), a, names)


def _draw(a: Any, name: str) -> bytes:
    from worker.report import charts

    filename, draw = charts.CHARTS[f"{name}_png"]
    with tempfile.TemporaryDirectory(prefix="chirpbase-console-") as tmp:
        return Path(draw(a, Path(tmp) / filename)).read_bytes()


CHARTS = web.AppKey("charts", ChartCache)


def _since(request: web.Request) -> str:
    since = request.query.get("since", "30d")
    return since if since in PERIODS else "30d"


async def charts_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    since = _since(request)
    try:
        made = await request.app[CHARTS].analysed(console, since)
        waiting = (await console.call(lambda op: op.inbox_state()))["waiting"]
    except Unavailable as exc:
        return error_page(request, exc)
    return console.render(
        request,
        "charts.html",
        current="charts",
        since=since,
        periods=PERIODS,
        charts=[{"name": n, "title": TITLES.get(n, n)} for n in made.charts],
        summary=made.analysis.summary,
        empty=made.analysis.empty,
        waiting=waiting,
        version=int(made.made_at),
    )


async def chart_image(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    try:
        image = await request.app[CHARTS].image(
            console, _since(request), request.match_info["name"]
        )
    except Unavailable as exc:
        return error_page(request, exc)
    if image is None:
        raise web.HTTPNotFound(text="no such chart for this period (not enough data?)")
    return web.Response(body=image, content_type="image/png")


def add_routes(app: web.Application) -> None:
    app[CHARTS] = ChartCache()
    app.router.add_get("/charts", charts_page, name="charts")
    app.router.add_get(r"/charts/{name:[a-z_]+}.png", chart_image, name="chart_image")
