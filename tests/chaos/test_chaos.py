"""Chaos: three worker processes on a mixed workload while a driver breaks things on purpose.

Everything runs for real: a private PostgreSQL cluster (restarted and stopped by the driver;
never the shared one), the sandbox stand-ins (X, OpenAI, Realtime + Storage) on a background
thread, and `python -m worker worker` processes that the driver kills with SIGKILL and restarts.

The workload (CHAOS_JOBS jobs, 5,000 by default) is fed in waves during the chaos window:
posts from `scheduled_tweets` rows with exact content (a few hundred, a few cancelled by the
operator; a quarter with an image, a quarter with a bare-domain link, a quarter with `&<>`),
a few rows with a topic (OpenAI writes them, half with an image, then they are posted), mentions
of the bot on the X stand-in (half inserted into `replies` directly, as the webhook would, half
left for `poll_mentions` to find), `poll_mentions` and `collect_stats` jobs, and `noop` jobs for
bulk. The X stand-in is the realistic one: it stores text the way X does (t.co links, an
appended media link, escaped `&<>`), shows a new post on the timeline only after a lag, and
serves short and empty pages.

The driver (seeded RNG, a bounded number of actions at random times) kill -9s workers and
restarts them, sends SIGTERM (also to a worker whose post is on its way to X, slowed down for
the purpose), restarts PostgreSQL or stops it for a few seconds, drops the
Realtime stand-in's connections or stops it accepting for a while, and makes the X and OpenAI
stand-ins answer 429, 5xx, time out or drop a created tweet's response. It also calls
`reap_expired_leases()` every couple of seconds, as pg_cron does every minute in production.

Then calm returns and every job must reach a final state. The checks: nothing posted twice, every
scheduled row posted (or cancelled), no tweet on X without its `tweets` row and no `posted` row
without its tweet on X (image rows with their media), every reply liked (one effective like each
on X) and marked liked, no row lost, no row left in an in-flight status (`pending`,
`generating`, `approved`, `posting`) once every job of it is final, the posts quota never
exceeded and exactly equal to what X counted.

Configure with CHAOS_SEED, CHAOS_JOBS, CHAOS_DURATION_S (chaos window), CHAOS_ACTIONS,
CHAOS_WORKERS; CHAOS_REPORT=path appends the run's figures as one JSON line. `make soak` runs it
longer and larger.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import io
import itertools
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
import pytest
from PIL import Image
from psycopg.types.json import Jsonb

from sandbox.gateway import REALTIME_STATE
from sandbox.stack import SandboxStack, ThreadedSandbox, make_openai_state, make_x_state
from sandbox.x_api import (
    CREATE_TWEET,
    LIKE,
    LOOKUP,
    MENTIONS,
    USER_TWEETS,
    RateLimitRule,
)
from tests.chaos.cluster import PrivateCluster
from tests.processes import WorkerProcess
from worker.clients.storage import ImageStore
from worker.content.images import fit_for_x
from worker.ops.cli import EXIT_UNAVAILABLE

SEED = int(os.environ.get("CHAOS_SEED", "1"))
JOBS = int(os.environ.get("CHAOS_JOBS", "5000"))
CHAOS_S = float(os.environ.get("CHAOS_DURATION_S", "60"))
ACTIONS = int(os.environ.get("CHAOS_ACTIONS", str(max(8, round(30 * CHAOS_S / 60)))))
WORKERS = int(os.environ.get("CHAOS_WORKERS", "3"))
DRAIN_S = float(os.environ.get("CHAOS_DRAIN_S", "150"))
REPORT = os.environ.get("CHAOS_REPORT")

LEASE_S = 10  # short leases: a killed worker's jobs come back within seconds
# A call to X may take X_CONNECT_TIMEOUT_S + X_TIMEOUT_S; the shutdown grace covers it.
X_TIMEOUTS = {"X_CONNECT_TIMEOUT_S": "1", "X_TIMEOUT_S": "4", "SHUTDOWN_GRACE_S": "6"}
RECONCILE_WINDOW_S = 5  # above the stand-in's timeline lag (2 s by default)
REAP_EVERY_S = 2.0  # pg_cron runs reap_expired_leases every minute; the driver, more often
FINAL = ("succeeded", "dead", "cancelled")

# Plenty of room in X's windows: 429s come from the driver, not from the workload's size.
GENEROUS = RateLimitRule(1_000_000, 900)


@dataclass
class Plan:
    """How the CHAOS_JOBS jobs are made up, and how they are fed."""

    posts: int
    cancelled: int
    generated: int
    mentions: int
    polls: int
    stats: int
    noops: int
    waves: int

    @classmethod
    def for_jobs(cls, jobs: int, waves: int) -> Plan:
        posts = max(20, jobs * 6 // 100)
        cancelled = max(2, posts // 50)
        generated = max(2, jobs // 250)
        mentions = max(20, jobs * 6 // 100)
        polls = max(waves, jobs // 250)
        stats = max(waves, jobs // 250)
        noops = jobs - posts - cancelled - generated - mentions - polls - stats
        if noops < 0:
            raise ValueError(f"CHAOS_JOBS={jobs} is too small for the mixed workload")
        return cls(posts, cancelled, generated, mentions, polls, stats, noops, waves)


@dataclass
class Figures:
    seed: int = SEED
    jobs_planned: int = 0
    jobs_total: int = 0
    jobs_by_status: dict[str, int] = field(default_factory=dict)
    jobs_run_more_than_once: int = 0
    kills: int = 0
    sigterms: int = 0
    sigterms_in_flight: int = 0
    image_posts: int = 0
    link_posts: int = 0
    reconciled: int = 0
    duplicate_refusals: int = 0
    worker_starts: int = 0
    worker_restarts: int = 0
    worker_startup_exits: int = 0
    pg_restarts: int = 0
    pg_outages: int = 0
    realtime_drops: int = 0
    realtime_pauses: int = 0
    x_faults: dict[str, int] = field(default_factory=dict)
    openai_faults: dict[str, int] = field(default_factory=dict)
    x_5xx_answered: int = 0
    x_429_answered: int = 0
    openai_faults_left: int = 0
    reaped: int = 0
    posts_on_x: int = 0
    posts_cap: int = 0
    posts_quota_used: float = 0
    reads_quota_used: float = 0
    reads_on_x: int = 0
    replies: int = 0
    like_requests: int = 0
    distinct_likes: int = 0
    duplicates: int = 0
    lost: int = 0
    dead: list[dict[str, Any]] = field(default_factory=list)
    stranded: list[dict[str, Any]] = field(default_factory=list)
    chaos_s: float = 0.0
    drain_s: float = 0.0
    duration_s: float = 0.0


class Db:
    """Short-lived connections (the cluster restarts under us), retried through an outage."""

    def __init__(self, cluster: PrivateCluster, name: str):
        self.dsn = cluster.app_dsn(name)

    def __call__(self, sql: str, params: Any = None, *, retry_s: float = 30.0) -> list[tuple]:
        deadline = time.monotonic() + retry_s
        while True:
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=3) as conn:
                    cur = conn.execute(sql, params)  # type: ignore[arg-type]
                    return cur.fetchall() if cur.description else []
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # the database is restarting: try again shortly

    def one(self, sql: str, params: Any = None) -> Any:
        rows = self(sql, params)
        return rows[0][0] if rows else None


class Chaos:
    """The driver: feeds the workload and breaks things on a seeded schedule."""

    def __init__(
        self,
        cluster: PrivateCluster,
        db_name: str,
        sandbox: ThreadedSandbox,
        stack: SandboxStack,
        plan: Plan,
        image: tuple[str, str],
    ):
        self.cluster = cluster
        self.db = Db(cluster, db_name)
        self.db_name = db_name
        self.sandbox = sandbox
        self.stack = stack
        self.plan = plan
        self.image_path, self.image_url = image  # a stored image the image posts attach
        self.image_ids: list[int] = []
        self.rng = random.Random(SEED)
        self.fig = Figures(jobs_planned=JOBS)
        self.workers: dict[int, WorkerProcess] = {}
        self.retired: list[WorkerProcess] = []
        self.generation = itertools.count()
        self._events: list[tuple[float, int, str, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.t0 = time.monotonic()
        self.enqueued: list[int] = []
        self.scheduled_ids: list[int] = []
        self.cancel_ids: list[int] = []
        self.mention_ids: list[str] = []
        self.authors = [
            stack.x.add_user(f"chaos_fan_{i}", name=f"Chaos fan {i}").id for i in range(12)
        ]
        self.paused_realtime = False
        self.ready_once: set[str] = set()
        self.crashes: list[tuple[str, int]] = []
        self.wave_s = CHAOS_S / plan.waves

    # -- scheduling -------------------------------------------------------------------------
    def at(self, t: float, name: str, fn: Callable[[], None]) -> None:
        heapq.heappush(self._events, (t, next(self._seq), name, fn))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def run_until(self, t_end: float) -> None:
        while self._events and self._events[0][0] <= t_end:
            t, _seq, _name, fn = heapq.heappop(self._events)
            delay = t - self.now()
            if delay > 0:
                time.sleep(delay)  # pacing the chaos schedule, not synchronisation
            fn()
        delay = t_end - self.now()
        if delay > 0:
            time.sleep(delay)

    # -- workers ----------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {
            **self.stack.env(self.cluster.app_dsn(self.db_name)),
            "DOORBELL_ENABLED": "true",
            "POLL_INTERVAL_S": "2",
            "LEASE_S": str(LEASE_S),
            **X_TIMEOUTS,
            "RECONCILE_WINDOW_S": str(RECONCILE_WINDOW_S),
            "LOG_LEVEL": "INFO",
        }

    def start_worker(self, slot: int) -> None:
        old = self.workers.get(slot)
        if old is not None:
            self.retired.append(old)
        w = WorkerProcess(self.env(), name=f"chaos-w{slot}-g{next(self.generation)}").start()
        self.workers[slot] = w
        self.fig.worker_starts += 1

    def alive(self, slot: int) -> bool:
        w = self.workers.get(slot)
        return w is not None and w.proc is not None and w.proc.poll() is None

    def working(self) -> list[int]:
        """Slots whose worker is up (it has answered /health since it started): killing one
        still starting would test only start-up (on a loaded machine that alone takes seconds)."""
        slots = []
        for slot, w in self.workers.items():
            if not self.alive(slot):
                continue
            if w.name not in self.ready_once and w.health() is not None:
                self.ready_once.add(w.name)
            if w.name in self.ready_once:
                slots.append(slot)
        return slots

    def supervise(self) -> None:
        """A container restart policy: a worker that exited on its own is started again. The
        only acceptable reason is start-up with the database down (exit code 4, "cannot
        start"); any other exit is a crash and fails the test."""
        for slot, w in list(self.workers.items()):
            code = w.proc.poll() if w.proc is not None else None
            if code is not None and not getattr(w, "doomed", False):
                if code == EXIT_UNAVAILABLE:
                    self.fig.worker_startup_exits += 1
                else:
                    self.crashes.append((w.name, code))
                self.start_worker(slot)

    def kill(self) -> None:
        slots = self.working()
        if not slots:
            return
        slot = self.rng.choice(slots)
        w = self.workers[slot]
        w.doomed = True  # type: ignore[attr-defined]
        w.kill()
        self.fig.kills += 1
        self.at(self.now() + self.rng.uniform(0.5, 3.0), "restart", lambda: self.start_worker(slot))

    def sigterm(self) -> None:
        slots = self.working()
        if not slots:
            return
        self._terminate(self.rng.choice(slots))

    def sigterm_in_flight(self, tries: int = 8) -> None:
        """SIGTERM the worker whose post is on its way to X (slowed down so that it is); when
        no post is due right now, try again a little later."""
        x = self.stack.x
        x.inject_latency(CREATE_TWEET, self.rng.uniform(1.0, 3.0))
        deadline = time.monotonic() + 2
        while x.in_flight(CREATE_TWEET) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the stand-in for the moment to strike
        x.inject_latency(CREATE_TWEET, 0)  # the post in flight keeps its delay
        holders = set()
        if x.in_flight(CREATE_TWEET):
            holders = {
                r[0]
                for r in self.db(
                    "select locked_by from public.jobs where kind = 'post_tweet'"
                    " and status = 'running'"
                )
            }
        slots = [s for s in self.workers if self.workers[s].name in holders and self.alive(s)]
        if slots:
            self._terminate(self.rng.choice(slots))
            self.fig.sigterms_in_flight += 1
        elif tries > 1 and self.now() < CHAOS_S - 3:
            self.at(
                self.now() + 1.0,
                "sigterm_in_flight",
                lambda: self.sigterm_in_flight(tries - 1),
            )

    def _terminate(self, slot: int) -> None:
        w = self.workers[slot]
        w.doomed = True  # type: ignore[attr-defined]
        w.signal(signal.SIGTERM)
        self.fig.sigterms += 1

        def restart_when_gone() -> None:
            if w.proc is not None and w.proc.poll() is None:
                self.at(self.now() + 0.5, "restart-after-term", restart_when_gone)
            else:
                self.start_worker(slot)

        self.at(self.now() + 0.5, "restart-after-term", restart_when_gone)

    # -- database ---------------------------------------------------------------------------
    def pg_restart(self) -> None:
        self.cluster.restart()
        self.fig.pg_restarts += 1

    def pg_outage(self) -> None:
        """Stopped for a few seconds (longer than a restart, shorter than the outage test)."""
        self.cluster.stop()
        time.sleep(self.rng.uniform(1.0, 4.0))  # the outage itself
        self.cluster.start()
        self.fig.pg_outages += 1

    def reap(self) -> None:
        with contextlib.suppress(psycopg.Error):  # restarting: the next round reaps
            self.fig.reaped += int(self.db.one("select public.reap_expired_leases()") or 0)
        self.at(self.now() + REAP_EVERY_S, "reap", self.reap)

    # -- Realtime ---------------------------------------------------------------------------
    def _realtime(self) -> Any:
        assert self.stack.gateway is not None
        return self.stack.gateway[REALTIME_STATE]

    def realtime_drop(self) -> None:
        self.sandbox.call(lambda: self._realtime().drop_connections())
        self.fig.realtime_drops += 1

    def realtime_pause(self) -> None:
        if self.paused_realtime:
            return
        self.sandbox.call(lambda: self._realtime().stop_accepting(drop=True))
        self.paused_realtime = True
        self.fig.realtime_pauses += 1
        self.at(self.now() + self.rng.uniform(3.0, 12.0), "realtime-resume", self.realtime_resume)

    def realtime_resume(self) -> None:
        self.sandbox.call(lambda: self._realtime().start_accepting())
        self.paused_realtime = False

    # -- X and OpenAI faults ----------------------------------------------------------------
    def x_fault(self) -> None:
        x = self.stack.x
        kind = self.rng.choice(["5xx", "5xx", "429", "429", "timeout", "dropped"])
        if kind == "5xx":
            endpoint = self.rng.choice([CREATE_TWEET, LIKE, MENTIONS, LOOKUP, USER_TWEETS])
            n = self.rng.randint(1, 4)
            x.fail_next(endpoint, n, status=self.rng.choice([500, 502, 503]))
        elif kind == "429":
            endpoint = self.rng.choice([CREATE_TWEET, LIKE, MENTIONS, LOOKUP])
            x.exhaust_rate_limit(endpoint, reset_in=self.rng.uniform(1.0, 5.0))
            n = 1
        elif kind == "timeout":
            endpoint = self.rng.choice([CREATE_TWEET, LIKE])
            n = 1
            x.hang_next(endpoint, n, seconds=40.0)  # longer than the client's read timeout
        else:  # the tweet is created, the response never arrives
            endpoint = CREATE_TWEET
            n = 1
            x.drop_after_create_next(n, mode="reset")
        key = f"{kind} {endpoint}"
        self.fig.x_faults[key] = self.fig.x_faults.get(key, 0) + n

    def openai_fault(self) -> None:
        kind = self.rng.choice(
            ["rate_limit", "server_error", "overloaded", "bad_gateway", "disconnect", "timeout"]
        )
        n = self.rng.randint(1, 3)
        state = self.stack.openai
        self.sandbox.call(lambda: state.inject_fault(kind, n, retry_after=1.0))
        self.fig.openai_faults[kind] = self.fig.openai_faults.get(kind, 0) + n

    # -- workload ---------------------------------------------------------------------------
    def share(self, total: int, wave: int) -> int:
        """Wave `wave`'s part of `total` (the parts add up to `total`)."""
        n = self.plan.waves
        return total * (wave + 1) // n - total * wave // n

    def feed(self, wave: int) -> None:
        p, db, rng = self.plan, self.db, self.rng
        # Posts with exact text, and some the operator will cancel before they are due.
        n = self.share(p.posts, wave)
        if n:
            # Due one after another across the wave, so posts are in flight whenever chaos hits.
            # What X rewrites is in the mix: a bare-domain link (wrapped in t.co), `&<>`
            # (escaped), an image (a media link appended), plain text.
            rows = db(
                "insert into public.scheduled_tweets (content, scheduled_for, image_path,"
                " image_url, alt_text) select 'chaos ' || %(seed)s || ' post w' || %(wave)s"
                " || '-' || g || case g %% 4 when 1 then ' see chirpbase.dev/c' || %(seed)s"
                " || 'w' || %(wave)s || 'g' || g || ' now' when 2 then ' Q&A <live> & more'"
                " else '' end || ': ' || md5(random()::text), now() + make_interval(secs =>"
                " %(spread)s * g / %(n)s), case when g %% 4 = 3 then %(path)s end,"
                " case when g %% 4 = 3 then %(url)s end,"
                " case when g %% 4 = 3 then 'a chaos test card' end"
                " from generate_series(1, %(n)s) g returning id, image_path is not null",
                {
                    "seed": SEED,
                    "wave": wave,
                    "spread": self.wave_s,
                    "n": n,
                    "path": self.image_path,
                    "url": self.image_url,
                },
            )
            self.scheduled_ids += [r[0] for r in rows]
            self.image_ids += [r[0] for r in rows if r[1]]
        n = self.share(p.cancelled, wave)
        if n:
            rows = db(
                "insert into public.scheduled_tweets (content, scheduled_for) select 'chaos "
                "cancelled w' || %s || '-' || g || ' ' || md5(random()::text), now() + interval "
                "'10 minutes' from generate_series(1, %s) g returning id",
                (wave, n),
            )
            ids = [r[0] for r in rows]
            self.scheduled_ids += ids
            self.cancel_ids += ids
            self.at(self.now() + rng.uniform(1, 5), "cancel", lambda ids=ids: self.cancel(ids))
        n = self.share(p.generated, wave)
        if n:
            rows = db(
                "insert into public.scheduled_tweets (topic, with_image) select 'chaos topic ' ||"
                " %s || ' wave ' || %s || ' number ' || g, g %% 2 = 0"
                " from generate_series(1, %s) g returning id, with_image",
                (SEED, wave, n),
            )
            self.scheduled_ids += [r[0] for r in rows]
            self.image_ids += [r[0] for r in rows if r[1]]
        # Mentions on X; half reach `replies` directly (as a webhook delivery would).
        n = self.share(p.mentions, wave)
        direct = []
        for i in range(n):
            author = rng.choice(self.authors)
            tweet = self.stack.x.add_mention(
                author, f"chaos mention w{wave}-{i} {rng.random():.6f}"
            )
            self.mention_ids.append(tweet.id)
            if i % 2 == 0:
                direct.append(
                    {
                        "reply_id": tweet.id,
                        "author_id": author,
                        "content": tweet.text,
                        "source": "webhook",
                    }
                )
        if direct:
            db(
                "insert into public.replies (reply_id, author_id, content, source) select "
                "r.reply_id, r.author_id, r.content, r.source from jsonb_to_recordset(%s) as "
                "r(reply_id text, author_id text, content text, source text) "
                "on conflict (reply_id) do nothing",
                (Jsonb(direct),),
            )
        # Periodic jobs (pg_cron's in production) and bulk.
        self.enqueue("poll_mentions", [{}] * self.share(p.polls, wave), f"w{wave}", self.wave_s)
        self.enqueue("collect_stats", [{}] * self.share(p.stats, wave), f"w{wave}", self.wave_s)
        noops = [
            {"duration_s": round(rng.choice([0, 0, 0.01, 0.05, 0.2, 1.0]), 3)}
            for _ in range(self.share(p.noops, wave))
        ]
        self.enqueue("noop", noops, f"w{wave}", self.wave_s)

    def enqueue(
        self, kind: str, payloads: list[dict[str, Any]], tag: str, spread_s: float = 0.0
    ) -> None:
        if not payloads:
            return
        # Spread over the wave: due one after another rather than all at once.
        rows = self.db(
            "select public.enqueue_job(%s, p.value, now() + make_interval(secs => %s * "
            "(p.ordinality - 1) / %s), 0, %s || ':' || %s || ':' || p.ordinality, 10)"
            " from jsonb_array_elements(%s) with ordinality as p",
            (kind, spread_s, len(payloads), f"chaos-{kind}", tag, Jsonb(payloads)),
        )
        self.enqueued += [r[0] for r in rows]

    def cancel(self, ids: list[int]) -> None:
        self.db(
            "update public.scheduled_tweets set status = 'cancelled' where id = any(%s)"
            " and status = 'pending'",
            (ids,),
        )

    # -- the run ----------------------------------------------------------------------------
    def schedule(self) -> None:
        for slot in range(WORKERS):
            self.start_worker(slot)
        # The chaos clock starts once every worker is up: on a loaded machine start-up alone can
        # take seconds, and faults injected before anyone calls X would test nothing.
        for w in self.workers.values():
            w.wait_ready(timeout=120)
        self.t0 = time.monotonic()
        for wave in range(self.plan.waves):
            t = wave * self.wave_s
            self.at(t, f"wave {wave}", lambda wave=wave: self.feed(wave))
        self.at(REAP_EVERY_S, "reap", self.reap)

        def every_second() -> None:
            self.supervise()
            self.at(self.now() + 1.0, "supervise", every_second)

        self.at(1.0, "supervise", every_second)
        # One of each kind of trouble, then a seeded mix up to ACTIONS.
        kinds = [
            "kill",
            "sigterm_in_flight",
            "pg_restart",
            "pg_outage",
            "realtime_drop",
            "realtime_pause",
            "x",
            "openai",
        ]
        weights = {
            "kill": 5,
            "sigterm": 1,
            "sigterm_in_flight": 2,
            "pg_restart": 1,
            "pg_outage": 1,
            "realtime_drop": 1,
            "realtime_pause": 1,
            "x": 6,
            "openai": 2,
        }
        while len(kinds) < ACTIONS:
            kinds.append(self.rng.choices(list(weights), weights=list(weights.values()))[0])
        actions = {
            "kill": self.kill,
            "sigterm": self.sigterm,
            "sigterm_in_flight": self.sigterm_in_flight,
            "pg_restart": self.pg_restart,
            "pg_outage": self.pg_outage,
            "realtime_drop": self.realtime_drop,
            "realtime_pause": self.realtime_pause,
            "x": self.x_fault,
            "openai": self.openai_fault,
        }
        for kind in kinds[:ACTIONS]:
            self.at(self.rng.uniform(3.0, CHAOS_S * 0.95), kind, actions[kind])

    def calm(self) -> None:
        """Faults off, Realtime accepting, every worker running, a last poll for mentions."""
        self.stack.x.clear_faults()
        self.stack.x.release_hangs()
        state = self.stack.openai
        self.fig.openai_faults_left = self.sandbox.call(state.pending_faults)
        self.sandbox.call(state.faults.clear)
        if self.paused_realtime:
            self.realtime_resume()
        self._events = [
            e
            for e in self._events
            if e[2] in ("reap", "supervise", "restart", "restart-after-term", "cancel")
        ]
        heapq.heapify(self._events)
        if not self.cluster.accepting():
            self.cluster.start()
        self.enqueue("poll_mentions", [{}], "final")

    def unfinished(self) -> int:
        return int(
            self.db.one(
                "select count(*) from public.jobs where status not in ('succeeded', 'dead', 'cancelled')"
            )
        )

    def drain(self, timeout: float) -> list[tuple]:
        """Run (reaping, supervising) until every job is final; the stuck ones after `timeout`."""
        deadline = time.monotonic() + timeout
        while self.unfinished():
            if time.monotonic() > deadline:
                return self.db(
                    "select id, kind, status, attempts, run_at - now(), last_error from public.jobs"
                    " where status not in ('succeeded', 'dead', 'cancelled') order by id limit 20"
                )
            self.run_until(self.now() + 1.0)
        return []

    def stop_all(self) -> None:
        for w in [*self.workers.values(), *self.retired]:
            w.stop()

    def outputs(self) -> Iterator[tuple[str, str]]:
        for w in [*self.retired, *self.workers.values()]:
            yield w.name, w.output()


@pytest.fixture
def chaos_db(ensure_up: PrivateCluster) -> str:
    return ensure_up.create_database("chirpbase_chaos")


def _configure(db: Db, plan: Plan) -> int:
    cap = plan.posts + plan.generated  # exactly what must be posted: no slack for a leak
    db(  # likes exist only on Enterprise access: the stand-in is set the same (make_x_state)
        "update public.configs set value = value || %s where key = 'quotas'",
        (Jsonb({"monthly_post_cap": cap, "plan": "enterprise"}),),
    )
    db(
        "update public.configs set value = value || %s where key = 'engagement'",
        (Jsonb({"daily_like_cap": 100000, "auto_like": True}),),
    )
    # The stand-in's default text echoes the prompt: near-duplicate checks would refuse it.
    db(
        "update public.configs set value = value || %s where key = 'generation'",
        (Jsonb({"recent_window": 0}),),
    )
    return cap


@pytest.mark.timeout(int(CHAOS_S + DRAIN_S + 120))
def test_chaos(ensure_up: PrivateCluster, chaos_db: str) -> None:
    cluster = ensure_up
    started = time.monotonic()
    rules = {ep: GENEROUS for ep in (CREATE_TWEET, LIKE, MENTIONS, LOOKUP, USER_TWEETS)}
    sandbox = ThreadedSandbox(
        cluster.admin_dsn(chaos_db),
        x=make_x_state(rate_limits=rules, access_tier="enterprise"),
        openai=make_openai_state(hang_seconds=5.0),  # its "timeout" fault: a 5 s stall
    )
    plan = Plan.for_jobs(JOBS, waves=max(6, round(CHAOS_S / 6)))
    with sandbox as stack:
        image = asyncio.run(_store_image(stack, cluster.app_dsn(chaos_db)))
        chaos = Chaos(cluster, chaos_db, sandbox, stack, plan, image)
        cap = _configure(chaos.db, plan)
        try:
            chaos.schedule()
            chaos.run_until(CHAOS_S)
            chaos.fig.chaos_s = round(chaos.now(), 1)
            chaos.calm()
            t_drain = time.monotonic()
            stuck = chaos.drain(DRAIN_S)
            chaos.fig.drain_s = round(time.monotonic() - t_drain, 1)
        finally:
            chaos.stop_all()
            if not cluster.accepting():
                cluster.start()
        fig = chaos.fig
        fig.duration_s = round(time.monotonic() - started, 1)
        _check(chaos, stack, cap, stuck)


async def _store_image(stack: SandboxStack, dsn: str) -> tuple[str, str]:
    """One image in Storage for the image posts (path, public URL)."""
    picture = Image.new("RGB", (400, 240), (40, 90, 200))
    out = io.BytesIO()
    picture.save(out, "PNG")
    fitted = fit_for_x(out.getvalue())
    store = ImageStore.from_settings(stack.settings(dsn))
    try:
        return fitted.filename, await store.upload_image(fitted)
    finally:
        await store.aclose()


def _check(chaos: Chaos, stack: SandboxStack, cap: int, stuck: list[tuple]) -> None:
    db, fig, x = chaos.db, chaos.fig, stack.x
    problems: list[str] = []
    if stuck:
        problems.append(f"not final after {DRAIN_S:.0f}s of calm: {stuck}")
    if chaos.crashes:
        problems.append(f"workers exited on their own (name, exit code): {chaos.crashes}")
    fig.worker_restarts = fig.worker_starts - WORKERS

    # Jobs: all final; which ran more than once; the dead, with their reasons.
    fig.jobs_by_status = {
        s: int(n)
        for s, n in db("select status, count(*) from public.jobs group by status order by status")
    }
    fig.jobs_total = sum(fig.jobs_by_status.values())
    fig.jobs_run_more_than_once = int(db.one("select count(*) from public.jobs where attempts > 1"))
    fig.dead = [
        {"id": i, "kind": k, "attempts": a, "error": e}
        for i, k, a, e in db(
            "select id, kind, attempts, last_error from public.jobs where status = 'dead' order by id"
        )
    ]
    not_final = fig.jobs_total - sum(fig.jobs_by_status.get(s, 0) for s in FINAL)
    if not_final:
        problems.append(f"{not_final} job(s) not in a final state")
    missing_jobs = len(chaos.enqueued) - int(
        db.one("select count(*) from public.jobs where id = any(%s)", (chaos.enqueued,))
    )
    noop_not_done = int(
        db.one(
            "select count(*) from public.jobs where id = any(%s) and kind = 'noop'"
            " and status <> 'succeeded'",
            (chaos.enqueued,),
        )
    )

    # Tweets: unique on X, one row each, every scheduled row posted or cancelled.
    posted = x.posted_tweets(include_deleted=True)
    fig.posts_on_x = len(posted)
    # X's duplicate check and ours compare the text as sent: what X returns is rewritten.
    texts = Counter(t.source_text for t in posted)
    text_dupes = sum(n - 1 for n in texts.values() if n > 1)
    rows = db("select tweet_id, content, scheduled_tweet_id from public.tweets")
    row_ids = Counter(r[0] for r in rows)
    row_dupes = sum(n - 1 for n in row_ids.values() if n > 1)
    per_schedule = Counter(r[2] for r in rows)
    schedule_dupes = sum(n - 1 for n in per_schedule.values() if n > 1)
    fig.duplicates = text_dupes + row_dupes + schedule_dupes
    on_x = {t.id: t.source_text for t in posted}
    media_on_x = {t.id for t in posted if t.media_keys}
    fig.image_posts = len(media_on_x)
    fig.link_posts = sum(1 for text in on_x.values() if "chirpbase.dev" in text)
    unrecorded = sorted(set(on_x) - set(row_ids))  # on X, unknown to the database
    phantom = sorted(set(row_ids) - set(on_x))  # in the database, not on X
    mismatched = [r[0] for r in rows if r[0] in on_x and on_x[r[0]] != r[1]]
    sched = db("select id, status, tweet_id, content, error from public.scheduled_tweets")
    sched_missing = len(set(chaos.scheduled_ids) - {r[0] for r in sched})
    by_status = Counter(r[1] for r in sched)
    not_posted = [
        (r[0], r[1], r[4]) for r in sched if r[1] != "posted" and r[0] not in chaos.cancel_ids
    ]
    cancelled_posted = [r[0] for r in sched if r[0] in chaos.cancel_ids and r[1] == "posted"]
    # No row is left in an in-flight status once every job of it is final: whatever ended a job
    # (its handler, a reaped lease, dead-lettering, cancellation) settled the row too.
    fig.stranded = [
        {"id": i, "status": st, "jobs": jobs, "error": e}
        for i, st, jobs, e in db(
            "select s.id, s.status, string_agg(j.kind || ' ' || j.id || ' ' || j.status, ', '"
            " order by j.id), s.error"
            " from public.scheduled_tweets s"
            " join public.jobs j on j.payload ? 'scheduled_tweet_id'"
            " and (j.payload ->> 'scheduled_tweet_id')::bigint = s.id"
            " where s.status in ('pending', 'generating', 'approved', 'posting')"
            " group by s.id having bool_and(j.status not in ('queued', 'running'))"
            " order by s.id"
        )
    ]
    posted_rows = {r[2] for r in sched if r[1] == "posted"}
    image_rows_without_media = sorted(
        r[0]
        for r in sched
        if r[0] in chaos.image_ids and r[1] == "posted" and r[2] not in media_on_x
    )
    fig.reconciled = int(
        db.one(
            "select count(*) from public.jobs where kind = 'post_tweet'"
            " and (result ->> 'reconciled')::boolean"
        )
    )
    fig.duplicate_refusals = x.request_count(CREATE_TWEET, status=403)
    if not (len(posted) == len(rows) == by_status.get("posted", 0) == len(posted_rows)):
        problems.append(
            f"tweets on X {len(posted)}, tweets rows {len(rows)}, posted scheduled rows "
            f"{by_status.get('posted', 0)} differ"
        )

    # Replies: every mention a row, liked once on X, marked liked.
    replies = {r[0]: r[1] for r in db("select reply_id, liked from public.replies")}
    fig.replies = len(replies)
    me = x.me.id
    requests = [like for like in x.like_requests() if like.user_id == me]
    fig.like_requests = len(requests)
    effective = Counter(like.tweet_id for like in requests if like.newly_liked)
    fig.distinct_likes = len(effective)
    replies_missing = sorted(set(chaos.mention_ids) - set(replies))
    not_liked_on_x = sorted(set(chaos.mention_ids) - set(effective))
    liked_twice = sorted(t for t, n in effective.items() if n > 1)
    not_marked = sorted(r for r, liked in replies.items() if not liked)
    extra_replies = sorted(set(replies) - set(chaos.mention_ids))

    # Quotas: never above the cap, and exactly what X counted.
    fig.posts_cap = cap
    fig.posts_quota_used = float(
        db.one(
            "select coalesce(sum(used), 0) from public.quota_usage where resource = 'posts'"
            " and month = public.current_month()"
        )
    )
    fig.reads_quota_used = float(
        db.one(
            "select coalesce(sum(used), 0) from public.quota_usage where resource = 'reads'"
            " and month = public.current_month()"
        )
    )
    fig.reads_on_x = x.posts_read
    # Reads are reserved per call (a page budget) and the unused part refunded after it: a crash
    # in between keeps the whole reservation (X may have served and billed the reads). So the
    # local count may run above X's, never below it.
    if fig.reads_quota_used < fig.reads_on_x:
        problems.append(f"reads quota {fig.reads_quota_used} below what X served {fig.reads_on_x}")
    if x.posts_created > cap or fig.posts_quota_used > cap:
        problems.append(
            f"posts cap {cap} exceeded: X created {x.posts_created}, quota used "
            f"{fig.posts_quota_used}"
        )
    if fig.posts_quota_used != x.posts_created:
        problems.append(
            f"posts quota used {fig.posts_quota_used} != posts X created {x.posts_created}"
        )

    fig.x_5xx_answered = sum(1 for r in x.requests if r.status >= 500)
    fig.x_429_answered = x.request_count(status=429)
    fig.lost = (
        missing_jobs
        + noop_not_done
        + sched_missing
        + len(not_posted)
        + len(unrecorded)
        + len(replies_missing)
        + len(not_liked_on_x)
        + len(not_marked)
    )
    for label, items in [
        ("jobs enqueued but missing", missing_jobs),
        ("noop jobs not succeeded", noop_not_done),
        ("scheduled rows missing", sched_missing),
        ("scheduled rows neither posted nor cancelled", not_posted),
        ("cancelled rows posted anyway", cancelled_posted),
        ("tweets on X not recorded", unrecorded),
        ("tweets rows not on X", phantom),
        ("tweets rows whose text differs from X", mismatched),
        ("image rows posted without their media", image_rows_without_media),
        ("duplicate texts on X", text_dupes),
        ("duplicate tweets rows", row_dupes + schedule_dupes),
        ("mentions without a replies row", replies_missing),
        ("replies rows that are not mentions", extra_replies),
        ("replies not liked on X", not_liked_on_x),
        ("replies liked twice", liked_twice),
        ("replies not marked liked", not_marked),
        ("dead jobs", fig.dead),
        ("rows left in an in-flight status with every job final", fig.stranded),
    ]:
        if items:
            problems.append(f"{label}: {items if isinstance(items, int) else items[:10]}")

    _report(fig)
    if problems:
        tails = "\n".join(
            f"--- {name} (last lines)\n" + "\n".join(out.splitlines()[-15:])
            for name, out in chaos.outputs()
            if "Traceback" in out
        )
        raise AssertionError("chaos run found:\n  " + "\n  ".join(problems) + "\n" + tails[-20000:])


def _report(fig: Figures) -> None:
    x_faults = sum(fig.x_faults.values())
    ai_faults = sum(fig.openai_faults.values())
    print(
        f"\nchaos seed={fig.seed}: {fig.jobs_total} jobs ({fig.jobs_by_status}), "
        f"{fig.jobs_run_more_than_once} ran more than once, {fig.reaped} leases reaped\n"
        f"  kills={fig.kills} sigterms={fig.sigterms} (posts in flight {fig.sigterms_in_flight})"
        f" worker restarts={fig.worker_restarts} "
        f"(start-up exits {fig.worker_startup_exits}) pg restarts={fig.pg_restarts} "
        f"pg outages={fig.pg_outages} realtime drops={fig.realtime_drops} "
        f"pauses={fig.realtime_pauses}\n"
        f"  injected X faults={x_faults} {fig.x_faults} (X answered {fig.x_5xx_answered} 5xx, "
        f"{fig.x_429_answered} 429) OpenAI faults={ai_faults} {fig.openai_faults} "
        f"({fig.openai_faults_left} unused)\n"
        f"  posts on X={fig.posts_on_x} (with an image {fig.image_posts}, a bare-domain link "
        f"{fig.link_posts}) reconciled={fig.reconciled} duplicate refusals="
        f"{fig.duplicate_refusals}\n"
        f"  cap={fig.posts_cap} quota used={fig.posts_quota_used:g} "
        f"reads on X={fig.reads_on_x} (quota {fig.reads_quota_used:g}) "
        f"replies={fig.replies} likes={fig.distinct_likes} (requests {fig.like_requests})\n"
        f"  duplicates={fig.duplicates} lost={fig.lost} dead={len(fig.dead)} "
        f"stranded rows={len(fig.stranded)} "
        f"chaos {fig.chaos_s}s drain {fig.drain_s}s total {fig.duration_s}s"
    )
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(fig), default=str) + "\n")
