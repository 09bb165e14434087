"""What a month on X costs: chirpbase next to the physical minimum and a naive collector.

    uv run python bench/cost.py [--days 30] [--mentions-per-day 30]

SANDBOX. A scratch database on the local PostgreSQL stack, the sandbox stack (X stand-in with
pay-per-use billing, Storage) and a real chirpbase Worker in this process. The reference account
for one month (`--days`):

* 3 posts a day; one of them with an image (upload and alt text); once a week one of the others
  carries a link;
* `--mentions-per-day` mentions a day (replies to the account's posts from 10 people), picked up
  by mention polls;
* stats every hour for posts under 7 days old (`collect_stats` with `days = 7`).

The worker does all of it through its real jobs (post_tweet, poll_mentions, collect_stats), so
every call is priced into `api_usage` by SQL from the `pricing` row, with X's once-per-UTC-day
billing of a resource applied. Days are compressed: at each simulated midnight every timestamp
on both sides moves back a day (the stand-in's bill starts a new UTC day).

Three prices for the same month, all from the same `pricing` row:

* chirpbase: what `api_usage` recorded for X (checked against what the stand-in billed);
* physical minimum: the posts and alt texts at their operation's price, each mention read once
  as an owned read, each author's username read once (a user read), and each post under 7 days
  old read once a day as an owned read (the cheapest endpoint for each read, once-per-day
  billing);
* naive collector: the same posts and mentions, stats by hourly lookups ($0.005 a post),
  every read billed (no once-a-day dedupe).

Goal: chirpbase <= 1.05 x the minimum. Prints the breakdown and the ratios from this run, and
exits non-zero when the goal is missed or chirpbase's record disagrees with the stand-in's bill.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
from loguru import logger  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from sandbox.stack import SandboxStack  # noqa: E402
from tests import pg  # noqa: E402
from worker.billing.prices import post_operation  # noqa: E402
from worker.clients.storage import ImageStore  # noqa: E402
from worker.config.models import PricingConfig  # noqa: E402
from worker.content.images import fit_for_x  # noqa: E402
from worker.migrate import migrate  # noqa: E402
from worker.runtime.worker import Worker  # noqa: E402

GOAL_RATIO = 1.05
POST_HOURS = (9, 13, 18)  # the schedule's default cadence (UTC)
IMAGE_HOUR = 13
MENTION_HOURS = (1, 5, 9, 13, 17, 21)  # mentions arrive in six batches a day
STATS_DAYS = 7


@dataclass
class Month:
    """What happened, for pricing the minimum and the naive collector."""

    posts: Counter[str] = field(default_factory=Counter)  # operation -> count
    alt_texts: int = 0
    mentions: int = 0
    authors: set[str] = field(default_factory=set)  # people who mentioned the account
    alive_per_day: list[int] = field(default_factory=list)  # posts read at least once a day
    alive_per_collection: list[int] = field(default_factory=list)


def create_db() -> str:
    pg.start_cluster()
    name = f"bench_cost_{os.getpid()}"
    pg.drop_database(name)
    pg.create_database(name)
    pg.bootstrap(name)
    migrate(pg.app_dsn(name))
    return name


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 15)
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def finished(conn: psycopg.Connection, job_id: int, limit_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        row = conn.execute(
            "select status, result, last_error from public.jobs where id = %s", (job_id,)
        ).fetchone()
        if row and row[0] in ("succeeded", "dead", "skipped", "failed"):
            if row[0] != "succeeded":
                raise RuntimeError(f"job {job_id} ended {row[0]}: {row[2]}")
            return row[1] or {}
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} did not finish in {limit_s}s ({row})")
        await asyncio.sleep(0.005)


def enqueue(conn: psycopg.Connection, kind: str, payload: str = "{}") -> int:
    row = conn.execute("select public.enqueue_job(%s, %s::jsonb)", (kind, payload)).fetchone()
    assert row is not None
    return int(row[0])


def png() -> bytes:
    image = Image.new("RGB", (800, 450), (20, 60, 120))
    ImageDraw.Draw(image).rectangle((100, 100, 500, 300), fill=(240, 200, 60))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def post(
    conn: psycopg.Connection, store: ImageStore, text: str, month: Month, *, image: bool
) -> None:
    fitted = fit_for_x(png()) if image else None
    url = await store.upload_image(fitted) if fitted is not None else None
    with conn.transaction():  # the job must not see the row before its image
        row = conn.execute(
            "insert into public.scheduled_tweets (content) values (%s) returning id, job_id",
            (text,),
        ).fetchone()
        assert row is not None
        if fitted is not None:
            conn.execute(
                "update public.scheduled_tweets set image_path = %s, image_url = %s,"
                " alt_text = %s where id = %s",
                (fitted.filename, url, "A yellow block on deep blue.", row[0]),
            )
            month.alt_texts += 1
    await finished(conn, int(row[1]))
    month.posts[post_operation(text)] += 1


def new_day(conn: psycopg.Connection, stack: SandboxStack) -> None:
    """Midnight UTC, compressed: every timestamp moves back a day on both sides."""
    conn.execute("update public.tweets set posted_at = posted_at - interval '1 day'")
    conn.execute("update public.stats set collected_at = collected_at - interval '1 day'")
    # Only today's billed resources matter for deduplication; today becomes yesterday.
    conn.execute(
        "delete from public.x_billed_resources where day < (now() at time zone 'UTC')::date"
    )
    conn.execute("update public.x_billed_resources set day = day - 1")
    for tweet in stack.x.tweets.values():
        tweet.created_at -= timedelta(days=1)
    stack.x.billing.start_new_day()


async def simulate(stack: SandboxStack, conn: psycopg.Connection, dsn: str, args: Any) -> Month:
    month = Month()
    fans = [stack.x.add_user(f"reader_{i}") for i in range(10)]
    settings = stack.settings(dsn, poll_interval_s=0.2, doorbell_enabled=False)
    store = ImageStore.from_settings(settings)
    kinds = ["post_tweet", "poll_mentions", "collect_stats"]
    per_batch = max(1, args.mentions_per_day // len(MENTION_HOURS))
    n = 0
    try:
        async with running(Worker(settings, kinds=kinds)):
            for day in range(args.days):
                alive_today: set[str] = set()
                for hour in range(24):
                    if hour in POST_HOURS:
                        n += 1
                        link = hour == POST_HOURS[0] and day % 7 == 0
                        text = f"Day {day + 1}, note {n}: small tools, shipped carefully."
                        if link:
                            text += " The write-up: https://example.com/notes"
                        await post(conn, store, text, month, image=hour == IMAGE_HOUR)
                    if hour in MENTION_HOURS:
                        ours = [t for t in stack.x.posted_tweets()][-3:]
                        for i in range(per_batch):
                            fan = fans[(day * 7 + hour + i) % len(fans)]
                            target = ours[i % len(ours)] if ours else None
                            if target is not None:
                                stack.x.add_reply(fan.id, target.id, f"thoughts on this, {i}")
                            else:
                                stack.x.add_mention(fan.id, f"hello @chirpbase_bot {i}")
                            month.mentions += 1
                            month.authors.add(fan.id)
                        await finished(conn, enqueue(conn, "poll_mentions"))
                    alive = [
                        r[0]
                        for r in conn.execute(
                            "select tweet_id from public.tweets where posted_at >= now() - %s",
                            (timedelta(days=STATS_DAYS),),
                        )
                    ]
                    month.alive_per_collection.append(len(alive))
                    alive_today.update(alive)
                    await finished(conn, enqueue(conn, "collect_stats", '{"days": 7}'))
                month.alive_per_day.append(len(alive_today))
                new_day(conn, stack)
                logger.info("day {} done", day + 1)
    finally:
        await store.aclose()
    return month


def price_month(month: Month, prices: PricingConfig) -> dict[str, dict[str, float]]:
    x = prices.x
    posts = sum(getattr(x, op) * count for op, count in month.posts.items())
    alt = month.alt_texts * x.media_metadata
    mentions = month.mentions * x.owned_read
    authors = len(month.authors) * x.user_read  # each author named once (a User: Read)
    return {
        "minimum": {
            "posts": posts,
            "alt text": alt,
            "mentions": mentions,
            "authors": authors,
            "stats": sum(month.alive_per_day) * x.owned_read,
            "identity": 0.0,
        },
        "naive": {
            "posts": posts,
            "alt text": alt,
            "mentions": mentions,
            "authors": authors,
            "stats": sum(month.alive_per_collection) * x.post_read,
            "identity": 0.0,
        },
    }


def recorded(conn: psycopg.Connection) -> dict[str, float]:
    groups = {
        "posts": ("tweets",),
        "alt text": ("media_metadata", "media_upload"),
        "mentions": ("mentions",),
        "authors": ("users_lookup",),
        "stats": ("users_tweets", "tweets_lookup"),
        "identity": ("me",),
    }
    out = dict.fromkeys(groups, 0.0)
    for endpoint, cost in conn.execute(
        "select endpoint, sum(estimated_cost_usd)::float8 from public.api_usage"
        " where endpoint not like 'openai:%' group by endpoint"
    ):
        key = next((k for k, v in groups.items() if endpoint in v), "identity")
        out[key] += cost
    return out


async def main_async(args: Any) -> int:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    name = create_db()
    started = time.monotonic()
    try:
        async with SandboxStack(pg.admin_dsn(name)) as stack:
            with psycopg.connect(pg.app_dsn(name), autocommit=True) as conn:
                month = await simulate(stack, conn, pg.app_dsn(name), args)
                row = conn.execute(
                    "select value from public.configs where key = 'pricing'"
                ).fetchone()
                prices = PricingConfig.model_validate(row[0] if row else {})
                chirpbase = recorded(conn)
                sources = Counter(
                    r[0] or "nothing to read yet"
                    for r in conn.execute(
                        "select result ->> 'source' from public.jobs where kind = 'collect_stats'"
                    )
                )
                billed = stack.x.billing.spent_usd
    finally:
        pg.drop_database(name)
    elapsed = time.monotonic() - started

    priced = price_month(month, prices)
    rows = {"chirpbase": chirpbase, **priced}
    totals = {k: sum(v.values()) for k, v in rows.items()}
    ratio = totals["chirpbase"] / totals["minimum"]
    naive_ratio = totals["naive"] / totals["minimum"]
    print(
        f"\nOne simulated month ({args.days} days): {sum(month.posts.values())} posts "
        f"({dict(month.posts)}), {month.alt_texts} with an image, {month.mentions} mentions, "
        f"{len(month.alive_per_collection)} hourly stats collections "
        f"(read via {dict(sources)}). Prices: configs.pricing as of {prices.as_of} "
        f"({prices.source}). Run time {elapsed:.0f} s.\n"
    )
    parts = list(chirpbase)
    print(f"{'USD':<12}" + "".join(f"{p:>11}" for p in parts) + f"{'total':>11}{'ratio':>8}")
    for label in ("chirpbase", "minimum", "naive"):
        cells = "".join(f"{rows[label][p]:>11.3f}" for p in parts)
        print(f"{label:<12}{cells}{totals[label]:>11.3f}{totals[label] / totals['minimum']:>8.3f}")
    print(
        f"\nchirpbase / minimum = {ratio:.3f} (goal <= {GOAL_RATIO}); naive / minimum = "
        f"{naive_ratio:.1f}; the stand-in billed ${billed:.3f}, chirpbase recorded "
        f"${totals['chirpbase']:.3f}"
    )
    ok = ratio <= GOAL_RATIO and abs(billed - totals["chirpbase"]) < 1e-6
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--mentions-per-day", type=int, default=30)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
