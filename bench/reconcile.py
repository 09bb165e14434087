"""Reconciliation cost: posts read per unknown outcome, against the fewest any search could read.

    uv run python bench/reconcile.py [--newer 0,150,450] [--older 300]

SANDBOX. A scratch database on the local PostgreSQL stack, the sandbox stack (the realistic X
stand-in: t.co rewriting, a timeline lag, short and empty pages) and a chirpbase Worker in this
process running `post_tweet`.

A post's outcome is made unknown, then `--newer` other posts appear on the account before the
retry (they push it back several pages), on top of `--older` posts from before the row started
posting. Three cases:

- found: X created the post and it is on the timeline when the retry looks;
- found late: X created it, but the timeline shows it only after the first look: the retry
  waits out the consistency window and looks again;
- not posted: X created nothing; after the window the retry concludes so and posts.

For each, the reads the worker's searches cost (posts X returned, which is what X bills) are
compared with the floor: the posts a search must see to decide, i.e. everything newer than the
post (found) or every post since the search's horizon (not posted). chirpbase bounds each search
with `start_time` at that horizon and looks at most twice per unknown outcome, so its ratio is
at most 2 (1 when the first look finds the post). Baseline, same run and same timeline: a
search without `start_time` that pages back until it passes the horizon (what an `until_id`
walk does), one look: it reads past the horizon into older posts. Pages are also counted
against the fewest full pages the floor needs (X's short pages add requests, not reads).

Prints a table and exits non-zero when chirpbase reads more than twice the floor.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

import psycopg  # noqa: E402
from loguru import logger  # noqa: E402

from sandbox.stack import SandboxStack  # noqa: E402
from sandbox.x_api import CREATE_TWEET, USER_TWEETS  # noqa: E402
from tests import pg  # noqa: E402
from tests.waiting import wait_for  # noqa: E402
from worker.clients.x import XClient  # noqa: E402
from worker.jobs._reconcile import HORIZON  # noqa: E402
from worker.runtime.worker import Worker  # noqa: E402

PAGE = 100
WINDOW_S = 2.0
LAG_S = 0.5
GOAL_RATIO = 2.0


@dataclass
class Case:
    name: str
    newer: int
    reads: int  # posts the worker's searches read
    pages: int  # timeline requests the worker made
    floor: int  # posts a search must see to decide
    baseline_reads: int  # one walk without start_time, back past the horizon

    @property
    def ratio(self) -> float:
        return self.reads / self.floor if self.floor else float(self.reads)

    @property
    def baseline_ratio(self) -> float:
        return self.baseline_reads / self.floor if self.floor else float(self.baseline_reads)


def one(conn: psycopg.Connection, sql: str, *params: object) -> object:
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    return row[0] if row else None


async def baseline_walk(client: XClient, user_id: str, horizon: datetime) -> int:
    """Reads of a search without start_time: pages back until a post older than the horizon."""
    reads = 0
    token = None
    while True:
        page = await client.timeline_page(user_id, max_results=PAGE, pagination_token=token)
        reads += len(page.tweets)
        if any(t.created_at and t.created_at < horizon for t in page.tweets):
            return reads
        token = page.next_token
        if token is None:
            return reads


async def run_case(name: str, newer: int, older: int, admin_dsn: str, dsn: str) -> Case:
    async with SandboxStack(admin_dsn) as stack:
        x = stack.x
        x.timeline_lag_s = LAG_S
        past = datetime.fromtimestamp(x.now(), UTC) - timedelta(hours=2)
        for i in range(older):  # the account's history before this post
            x.create_tweet(x.me.id, f"older post {i}", created_at=past + timedelta(seconds=i))
        if name == "not posted":
            x.fail_next(CREATE_TWEET, 1, status=503)  # refused before any work: nothing created
        else:
            x.drop_after_create_next()  # created, the answer lost
        settings = stack.settings(
            dsn, poll_interval_s=0.3, reconcile_window_s=WINDOW_S, doorbell_enabled=False
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("truncate public.scheduled_tweets, public.tweets, public.jobs cascade")
            conn.execute("delete from public.quota_usage")
            row_id = one(
                conn,
                "insert into public.scheduled_tweets (content) values (%s) returning id",
                f"the post whose answer was lost ({name}, {newer} newer)",
            )
            worker = Worker(settings, kinds=["post_tweet"])
            task = asyncio.create_task(worker.run())
            await asyncio.wait_for(worker.ready.wait(), 30)
            try:
                await wait_for(
                    lambda: one(
                        conn,
                        "select status = 'queued' and attempts = 1 from public.jobs"
                        " where kind = 'post_tweet'",
                    ),
                    timeout=20,
                    message="the unknown outcome",
                )
                ours = [t for t in x.posted_tweets() if t.source_text.startswith("the post")]
                for i in range(newer):  # posts that appear before the retry
                    x.create_tweet(x.me.id, f"newer post {i}")
                x.advance_time(LAG_S)
                if name == "found late" and ours:
                    ours[0].visible_at = float("inf")  # not on the timeline at the first look
                reads_before = x.posts_read
                pages_before = x.request_count(USER_TWEETS)
                conn.execute("update public.jobs set run_at = now() where kind = 'post_tweet'")
                if name == "found late" and ours:
                    await wait_for(
                        lambda: one(
                            conn,
                            "select last_error like '%%waiting for X''s timeline%%'"
                            " from public.jobs where kind = 'post_tweet'",
                        ),
                        timeout=20,
                        message="the first look to find nothing and wait",
                    )
                    ours[0].visible_at = x.now()
                await wait_for(
                    lambda: (
                        one(
                            conn, "select status from public.scheduled_tweets where id = %s", row_id
                        )
                        in ("posted", "failed")
                    ),
                    timeout=60,
                    message="the retry to settle",
                )
                status = one(
                    conn, "select status from public.scheduled_tweets where id = %s", row_id
                )
                if status != "posted" or x.posts_created != 1:
                    raise RuntimeError(f"{name}: {status}, {x.posts_created} created on X")
                reads = x.posts_read - reads_before
                pages = x.request_count(USER_TWEETS) - pages_before
                started = one(
                    conn,
                    "select post_started_at from public.scheduled_tweets where id = %s",
                    row_id,
                )
            finally:
                worker.stop()
                await asyncio.wait_for(task, 30)
        assert isinstance(started, datetime)
        horizon = (started - HORIZON).replace(microsecond=0)
        since = sum(1 for t in x.posted_tweets() if t.created_at >= horizon)
        floor = newer + 1 if name != "not posted" else since - 1  # minus the post it made
        client = XClient.from_settings(settings)
        try:
            baseline = await baseline_walk(client, x.me.id, horizon)
        finally:
            await client.aclose()
        return Case(name, newer, reads, pages, floor, baseline)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--newer", default="0,150,450", help="posts appearing before the retry")
    parser.add_argument("--older", type=int, default=300, help="posts before the horizon")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    pg.start_cluster()
    name = f"bench_reconcile_{os.getpid()}"
    pg.drop_database(name)
    pg.create_database(name)
    pg.bootstrap(name)
    from worker.migrate import migrate

    migrate(pg.app_dsn(name))
    cases: list[Case] = []
    try:
        for newer in (int(n) for n in args.newer.split(",")):
            for case in ("found", "found late", "not posted"):
                cases.append(
                    await run_case(case, newer, args.older, pg.admin_dsn(name), pg.app_dsn(name))
                )
    finally:
        pg.drop_database(name)

    print("\nReconciliation cost per unknown outcome (reads = posts X returned; X bills per post)")
    print(
        f"{'case':<12} {'newer':>6} {'floor':>6} {'reads':>6} {'ratio':>6} {'pages':>6}"
        f" {'min pages':>9} {'baseline':>9} {'ratio':>6}"
    )
    worst = 0.0
    for c in cases:
        worst = max(worst, c.ratio)
        print(
            f"{c.name:<12} {c.newer:>6} {c.floor:>6} {c.reads:>6} {c.ratio:>6.2f} {c.pages:>6}"
            f" {max(1, math.ceil(c.floor / PAGE)):>9} {c.baseline_reads:>9} {c.baseline_ratio:>6.2f}"
        )
    print(
        "\nbaseline: one look without start_time; in 'found late' and 'not posted' a single look"
        "\ncannot tell a post the timeline does not show yet from one never made (it would post"
        "\nagain); chirpbase's second look after the window is what that certainty costs."
    )
    print(f"worst chirpbase ratio {worst:.2f} (goal <= {GOAL_RATIO:.0f}: at most two looks)")
    return 0 if worst <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
