"""Generation benchmark: scheduled_tweets insert -> posted tweet, and Pillow on a big PNG.

    uv run python bench/generation.py [--rows 3] [--text-latency 1] [--image-latency 3]

SANDBOX. Everything runs on this machine: a scratch database on the local PostgreSQL stack
(bootstrap + migrations, dropped at the end) and `sandbox.stack.SandboxStack`: the OpenAI
stand-in answering text after `--text-latency` seconds and images after `--image-latency`
seconds, the Supabase gateway (Realtime, so the worker's doorbell rings on each job insert, and
Storage) and the X stand-in.

1. End to end: a Worker running generate_tweet and post_tweet; the bench inserts a
   `scheduled_tweets` row (topic, with_image) and times until the row is generated (content,
   image URL, alt text written) and until it is posted (the image uploaded to X with its alt
   text, the tweet created, the rows written back). Measured twice, the same way: with the image
   drawn while the text is written (what generate_tweet does) and with the two one after the
   other (the baseline), and compared with the sum of the stand-in latencies.
   Goal: insert -> posted < 3.4 s with 1 s text and 3 s image (the seed's bar is 30 s).
2. Pillow: `worker.content.images.fit_for_x` on a 4096x4096 PNG, against a naive baseline (decode,
   one Lanczos resize to 2048, JPEG encode) on the same bytes. Goal: < 1 s.

Exits non-zero when a goal is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator, Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
from loguru import logger  # noqa: E402
from PIL import Image  # noqa: E402

from sandbox.openai_api import ChatRequest, render_image  # noqa: E402
from sandbox.stack import SandboxStack  # noqa: E402
from tests import pg  # noqa: E402
from worker.content.images import fit_for_x  # noqa: E402
from worker.jobs.generate_tweet import Generator  # noqa: E402
from worker.migrate import migrate  # noqa: E402
from worker.runtime.worker import Worker  # noqa: E402
from worker.settings import Settings  # noqa: E402

GOAL_END_TO_END_S = 3.4
GOAL_PILLOW_S = 1.0
TOPICS = [
    "partial indexes",
    "asyncio cancellation",
    "reading EXPLAIN output",
    "small pull requests",
    "structured logging",
    "connection pooling",
    "feature flags",
    "property-based tests",
]


# -- end to end --------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    pg.start_cluster()
    name = f"bench_generation_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    pg.create_database(name)
    try:
        pg.bootstrap(name)
        migrate(pg.app_dsn(name))
        yield name
    finally:
        pg.drop_database(name)


# fmt: off
_WORDS = [
    "index", "vacuum", "planner", "cache", "latency", "replica", "backup", "schema", "query",
    "cursor", "lock", "queue", "retry", "deploy", "rollback", "feature", "flag", "metric",
    "trace", "log", "budget", "review", "branch", "merge", "release", "patch", "socket",
    "buffer", "thread", "event", "loop", "coroutine", "timeout", "lease", "quota", "alert",
    "chart", "report", "pixel",
]
# fmt: on


def distinct_text(request: ChatRequest) -> str:
    """A different tweet every time (random words), so the near-duplicate check never asks
    twice: the bench times one draft per row."""
    rng = random.Random(request.user)
    return "Today: " + " ".join(rng.sample(_WORDS, 14)) + "."


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Worker]:
    worker = Worker(settings, kinds=["generate_tweet", "post_tweet"])
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 15)
    deadline = time.monotonic() + 15
    while worker.doorbell is not None and not worker.doorbell.connected:
        if time.monotonic() > deadline:
            raise TimeoutError("the doorbell did not connect")
        await asyncio.sleep(0.01)
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def insert_to_posted(conn: psycopg.AsyncConnection[Any], topic: str) -> tuple[float, float]:
    """Seconds from the insert to the row being generated, and to it being posted (checked
    every 5 ms)."""
    started = time.perf_counter()
    cur = await conn.execute(
        "insert into public.scheduled_tweets (topic, with_image) values (%s, true) returning id",
        (topic,),
    )
    row = await cur.fetchone()
    assert row is not None
    row_id = row[0]
    generated: float | None = None
    while True:
        cur = await conn.execute(
            "select status, content, image_url, alt_text, error from public.scheduled_tweets"
            " where id = %s",
            (row_id,),
        )
        status, content, image_url, alt_text, error = await cur.fetchone() or (None,) * 5
        now = time.perf_counter()
        if generated is None and content:
            generated = now - started
            if not (image_url and alt_text):
                raise RuntimeError(f"row {row_id} generated without its image: {image_url!r}")
        if status == "posted":
            return generated or now - started, now - started
        if status == "failed" or now - started > 30:
            raise RuntimeError(f"row {row_id} not posted: {status} {error}")
        await asyncio.sleep(0.005)


async def end_to_end(
    rows: int, text_latency: float, image_latency: float
) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {}
    with scratch_database() as db_name:
        async with SandboxStack(pg.admin_dsn(db_name)) as stack:
            stack.openai.set_chat_responder(distinct_text)
            settings = stack.settings(pg.app_dsn(db_name), poll_interval_s=15.0)
            async with (
                running_worker(settings),
                await psycopg.AsyncConnection.connect(pg.app_dsn(db_name), autocommit=True) as conn,
            ):
                topics = iter(TOPICS * (2 * rows + 2))
                # Warm-up (no latency): clients connected, pools filled, regexes compiled.
                await insert_to_posted(conn, next(topics))
                stack.openai.set_latency(chat=text_latency, images=image_latency)
                for mode, concurrent in (("concurrent", True), ("sequential", False)):
                    Generator.draw_concurrently = concurrent
                    results[mode] = [
                        await insert_to_posted(conn, next(topics)) for _ in range(rows)
                    ]
                Generator.draw_concurrently = True
            posted = len(stack.x.posted_tweets())
            if posted != 1 + 2 * rows:
                raise RuntimeError(f"the X stand-in holds {posted} tweets, not {1 + 2 * rows}")
    return results


# -- Pillow ------------------------------------------------------------------------------------


def big_png() -> bytes:
    """4096x4096: an illustration-like picture (gradients, shapes) with sensor-like noise."""
    base = Image.open(io.BytesIO(render_image("bench", 4096, 4096))).convert("RGB")
    noise = Image.effect_noise((4096, 4096), 24).convert("RGB")
    img = Image.blend(base, noise, 0.12)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def naive_fit(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    img = img.resize((2048, 2048), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88, optimize=True)
    return buf.getvalue()


def timed(fn: Callable[[bytes], Any], data: bytes, runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        started = time.perf_counter()
        out = fn(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3, help="rows timed per mode")
    parser.add_argument("--text-latency", type=float, default=1.0)
    parser.add_argument("--image-latency", type=float, default=3.0)
    parser.add_argument("--pillow-runs", type=int, default=5)
    parser.add_argument("--verbose", "-v", action="store_true", help="every run, worker logs")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="INFO" if args.verbose else "WARNING")

    load = os.getloadavg()[0]
    print(
        f"Generation benchmark (SANDBOX stand-ins): {os.cpu_count()} CPUs, load {load:.1f}; "
        f"text {args.text_latency:g} s, image {args.image_latency:g} s"
    )
    results = asyncio.run(end_to_end(args.rows, args.text_latency, args.image_latency))
    latency_sum = args.text_latency + args.image_latency

    def median(mode: str, stage: int) -> float:
        return statistics.median(r[stage] for r in results[mode])

    print(f"\n  insert -> (s), median of {args.rows}   generated     posted   posted min/max")
    for mode, values in results.items():
        logger.info("{}: {}", mode, [(round(g, 3), round(p, 3)) for g, p in values])
        posted = [v[1] for v in values]
        print(
            f"  {mode + ' text+image':<32} {median(mode, 0):9.3f} {median(mode, 1):10.3f}"
            f"   {min(posted):.3f}/{max(posted):.3f}"
        )
    concurrent = median("concurrent", 1)
    sequential = median("sequential", 1)
    print(f"  sum of stand-in latencies        {latency_sum:9.3f}")
    print(f"  posted: concurrent / sequential  {concurrent / sequential:9.2f}x")
    print(f"  posted: concurrent / latency sum {concurrent / latency_sum:9.2f}x")

    data = big_png()
    fit_s, fitted = timed(fit_for_x, data, args.pillow_runs)
    naive_s, naive = timed(naive_fit, data, args.pillow_runs)
    print(f"\n  Pillow, 4096x4096 PNG ({len(data) / 1e6:.1f} MB), median of {args.pillow_runs}")
    print(
        f"  fit_for_x                  {fit_s:8.3f} s -> {fitted.width}x{fitted.height} "
        f"{fitted.mime}, {fitted.size / 1e6:.2f} MB"
    )
    size = len(naive) / 1e6
    print(f"  naive resize baseline      {naive_s:8.3f} s -> 2048x2048 JPEG, {size:.2f} MB")
    print(f"  naive / fit_for_x           {naive_s / fit_s:7.2f}x")

    ok_e2e = concurrent < GOAL_END_TO_END_S
    ok_pillow = fit_s < GOAL_PILLOW_S
    print(
        f"\n  goal insert -> posted < {GOAL_END_TO_END_S} s: "
        f"{'met' if ok_e2e else 'MISSED'} ({concurrent:.3f} s)"
    )
    print(f"  goal Pillow < {GOAL_PILLOW_S} s: {'met' if ok_pillow else 'MISSED'} ({fit_s:.3f} s)")
    return 0 if ok_e2e and ok_pillow else 1


if __name__ == "__main__":
    raise SystemExit(main())
