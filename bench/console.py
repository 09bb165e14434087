"""Console page latency: inbox and calendar with 10,000 scheduled posts and 1,000 drafts.

    uv run python -m bench.console [--scheduled 10000] [--drafts 1000] [--requests 200]

Serves the operator console (the real aiohttp app, its Operator calls in threads, Jinja2) on a
scratch database and times whole HTTP requests from a client in the same process: login once,
then each page `--requests` times after 20 warm-up requests. The same pages are timed first on
the empty database, so the ratio says what the rows cost. The goal: inbox and calendar p95 below
200 ms with the rows in place (the week of the calendar holds about 2,300 of the posts). Exits
non-zero when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from aiohttp import web  # noqa: E402

from tests import pg  # noqa: E402
from worker.console.app import create_console_app  # noqa: E402
from worker.console.auth import SESSION_COOKIE, hash_password  # noqa: E402
from worker.console.core import Console, ConsoleConfig  # noqa: E402
from worker.console.data import ConsoleDB  # noqa: E402

GOAL_MS = 200.0
PAGES = ("inbox", "calendar", "calendar?view=day")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seed(dsn: str, scheduled: int, drafts: int) -> None:
    """`scheduled` written posts over the next 30 days and `drafts` awaiting approval."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into public.scheduled_tweets (content, scheduled_for)"
            " select 'Scheduled post number ' || g || ': a small Postgres habit, explained.',"
            "        now() + interval '10 minutes' + (g * interval '30 days' / %s)"
            " from generate_series(1, %s) g",
            (scheduled, scheduled),
        )
        conn.execute(
            "insert into public.scheduled_tweets (topic, with_image)"
            " select 'topic ' || g, g %% 3 = 0 from generate_series(1, %s) g",
            (drafts,),
        )
        conn.execute(
            "update public.scheduled_tweets set status = 'awaiting_approval',"
            " content = 'Draft ' || id || ': measure first, then tune. The planner knows more.',"
            " image_url = case when with_image then 'http://127.0.0.1:9/img/' || id || '.jpg' end,"
            " alt_text = case when with_image then 'An illustration for draft ' || id end,"
            " generated_at = now() where topic is not null"
        )
        conn.execute("vacuum analyze public.scheduled_tweets")
        conn.execute("vacuum analyze public.jobs")


async def time_pages(base: str, cookie: str, requests: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    async with aiohttp.ClientSession(cookies={SESSION_COOKIE: cookie}) as http:
        for page in PAGES:
            samples = []
            for i in range(20 + requests):
                started = time.perf_counter()
                async with http.get(f"{base}/{page}") as r:
                    body = await r.read()
                    assert r.status == 200, (page, r.status, body[:200])
                if i >= 20:
                    samples.append((time.perf_counter() - started) * 1000)
            timings[page] = samples
    return timings


async def serve(dsn: str) -> tuple[web.AppRunner, str, str, Console]:
    config = ConsoleConfig(password_hash=hash_password("bench-password-123"), signing_key=b"b" * 32)
    console = Console(config, ConsoleDB(dsn))
    root = web.Application()
    root.add_subapp("/console", create_console_app(console))
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    cookie, _session = console.signer.issue()
    return runner, f"http://127.0.0.1:{port}/console", cookie, console


async def measure(dsn: str, requests: int) -> dict[str, list[float]]:
    runner, base, cookie, _console = await serve(dsn)
    try:
        return await time_pages(base, cookie, requests)
    finally:
        await runner.cleanup()


def rows(dsn: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        found = conn.execute(
            "select count(*), count(*) filter (where status = 'awaiting_approval'),"
            " count(*) filter (where scheduled_for < date_trunc('week', now()) + interval '7 days')"
            " from public.scheduled_tweets"
        ).fetchone()
    assert found is not None
    return int(found[0]), int(found[1]), int(found[2])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduled", type=int, default=10_000)
    parser.add_argument("--drafts", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    pg.start_cluster()
    template = pg.build_template()
    name = template.clone()
    dsn = pg.app_dsn(name)
    try:
        empty = asyncio.run(measure(dsn, args.requests))
        started = time.perf_counter()
        seed(dsn, args.scheduled, args.drafts)
        seeded_s = time.perf_counter() - started
        total, waiting, this_week = rows(dsn)
        loaded = asyncio.run(measure(dsn, args.requests))
    finally:
        pg.drop_database(name)
        pg.drop_database(template.name)

    print(
        f"console pages, {args.requests} requests each after 20 warm-up, one client "
        f"(rows: {total:,} scheduled_tweets, {waiting:,} awaiting approval, {this_week:,} "
        f"this week; seeded in {seeded_s:.1f} s)"
    )
    print(
        f"{'page':<20} {'empty p50':>10} {'empty p95':>10} {'loaded p50':>11} {'loaded p95':>11} {'p95 ratio':>10}"
    )
    ok = True
    for page in PAGES:
        e, loaded_ms = empty[page], loaded[page]
        e95, l95 = _pct(e, 0.95), _pct(loaded_ms, 0.95)
        print(
            f"{page:<20} {statistics.median(e):>8.1f}ms {e95:>8.1f}ms "
            f"{statistics.median(loaded_ms):>9.1f}ms {l95:>9.1f}ms {l95 / e95:>9.2f}x"
        )
        ok &= l95 < GOAL_MS
    print(f"goal: loaded p95 < {GOAL_MS:.0f} ms for every page: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
