"""`make demo`: the whole chirpbase loop on the local sandbox, shown live, in about a minute.

Everything runs on this machine: PostgreSQL with pg_cron (the real control plane) and
stand-ins for X, OpenAI, Supabase Realtime and Storage. Nothing is sent to the real services.

The demo resets chirpbase's tables in the local `postgres` database, loads three weeks of
clearly labelled simulated history (so the report has something to show), starts a worker
with its Realtime doorbell, schedules a written tweet and a generated one with an image, a
thread and a poll, lets people reply and vote and engagement grow on the X stand-in, has a
reply drafted for the person who mentioned the account, approved (as `chirpbase replies
approve` does) and posted under their post, and ends with the report. The worker serves the
operator console meanwhile (its URL and a fresh sandbox password are printed).

`python -m sandbox.demo --console` (`make console`) tells the same story, then keeps the
sandbox, the worker and the console running with drafts awaiting approval and a week of posts
on the calendar, for a person to try, until Ctrl-C.

Longer than 600 lines because it is one story told in order (each step a short function the
next one reads on from); its pieces share the timeline, the pacing and the stand-ins, and split
across modules the story would have to be read in several places at once.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sandbox import localdb as pg
from sandbox.openai_api import ChatRequest
from sandbox.stack import SandboxStack
from worker.console import console_mount
from worker.console.auth import hash_password
from worker.logs import setup_logging
from worker.ops.operator import Operator
from worker.runtime.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
DB = "postgres"  # the database pg_cron runs in, as on Supabase
CHIRPBASE_TABLES = (
    "tweets, replies, stats, scheduled_tweets, jobs, api_usage, quota_usage, alerts, polls, "
    "reply_drafts, reply_opt_outs, x_users"
)
REPLIERS = [
    ("ada_writes", "This is exactly the Postgres trick I needed today, thanks!"),
    ("grace_ops", "Saved. SKIP LOCKED queues are underrated."),
    ("linus_t", "Nice one. Does it hold up with a million finished jobs?"),
    ("mar_codes", "Love the illustration 😍"),
    ("kenji_dev", "日本でも使っています。ありがとう！"),
]

PACE_S = 2.0  # a pause between acts, so people can follow along

SANDBOX_BANNER = (
    "[bold black on yellow] SANDBOX [/] chirpbase against local stand-ins for X, OpenAI, "
    "Supabase Realtime and Storage. Nothing leaves this machine."
)


TEMPLATES = (
    "Small habit, big payoff: when working on {topic}, measure before you tune. "
    "Numbers beat hunches every time. #postgres",
    "Today I learned something about {topic}: read the docs twice, benchmark once, "
    "and write down what surprised you.",
    "{topic}, in one line: the boring, well-tested option usually wins in production.",
    "If {topic} feels slow, look at the plan before touching the config. It is almost never "
    "the setting you expect.",
)

#: The parts of a generated thread (worker/content/generation.py thread_part_topic asks for
#: "post N of a M-post thread on X about: TOPIC."), each saying something of its own.
THREAD_PART = re.compile(r"post (\d+) of a (\d+)-post thread on X about: (.+?)\. Write only")
THREAD_PARTS = (
    "{topic}, a short thread: what they are, when they help, and what they cost. 🧵",
    "When they help: a query that always filters on the same condition reads a far smaller index.",
    "What they cost: the condition must match the queries. Check the plan after every change.",
)
#: Topics whose text is written out (the console's poll: a question to vote on).
WRITTEN = {"where a job queue lives": "Where does your job queue live? Vote, then tell us why."}

_TURNS = itertools.count()

MENTION = ("curious_cat", "@chirpbase_bot what stack is this running on?")
#: Reply drafts by what the post says (first match), each phrased differently (the drafts pass
#: the near-duplicate check against the account's recent replies).
ANSWERS = (
    (
        "what stack",
        "Postgres is the control plane: pg_cron queues the jobs, a Python worker "
        "runs them, and Supabase Realtime wakes it within a second.",
    ),
    (
        "million finished",
        "It does: finished jobs leave the partial index, so the claim query "
        "only ever sees the work still waiting.",
    ),
    (
        "skip locked",
        "Agreed, and they need no extra service: the queue is one table you can query.",
    ),
    (
        "illustration",
        "Thank you! The image is generated, fitted to X's limits and labelled as made with AI.",
    ),
    ("ありがとう", "ありがとうございます！お役に立ててうれしいです。"),
)


def _reply_writer(request: ChatRequest) -> Any:
    """Answer reply prompts (worker/conversation/drafting.py) about the post they quote."""
    lines = request.user.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Answer this post by"))
    post = lines[start + 1].lower()
    for key, text in ANSWERS:
        if key in post:
            return {"text": text}
    return {"text": f"Thanks for reading, and for writing back ({next(_TURNS)})."}


def _tweet_writer(request: ChatRequest) -> Any:
    """Answer generation prompts like a model would: on topic, in character, within limits,
    a different phrasing per topic (so drafts pass the near-duplicate check); reply prompts
    get a reply."""
    if "Answer this post by" in request.user:
        return _reply_writer(request)
    topic = "Postgres"
    for line in request.user.splitlines():
        if line.lower().startswith("topic:"):
            topic = line.split(":", 1)[1].strip() or topic
    template = TEMPLATES[next(_TURNS) % len(TEMPLATES)]
    if topic.lower() in WRITTEN:
        template = WRITTEN[topic.lower()]
    if part := THREAD_PART.search(topic):
        position, topic = int(part.group(1)), part.group(3).capitalize()
        template = THREAD_PARTS[(position - 1) % len(THREAD_PARTS)]
    return {
        "text": template.format(topic=topic),
        "alt_text": f"A clean illustration about {topic}: a chart rising next to an elephant.",
        "image_prompt": f"clean illustration about {topic}, soft colours, no text",
    }


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    events: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.events.append(f"[dim]{time.monotonic() - self.started:5.1f}s[/] {text}")


def reset_database() -> None:
    """Fresh chirpbase state in the local cron database, with the default configs."""
    pg.start_cluster()
    pg.ensure_cron_database()
    with psycopg.connect(pg.app_dsn(DB), autocommit=True) as conn:
        conn.execute(f"truncate {CHIRPBASE_TABLES} restart identity")
        conn.execute(
            "update public.x_account set user_id = null, username = null, mentions_since_id = null"
        )
        conn.execute("delete from public.configs")
    pg.ensure_cron_database()  # re-inserts the default configs and schedules


def seed_history(conn: psycopg.Connection, days: int = 21) -> int:
    """Simulated past tweets and hourly stats (labelled as such) so the report has a shape."""
    rng = random.Random(7)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    n = 0
    for day in range(days, 0, -1):
        for hour in rng.sample([8, 11, 14, 17, 20], 2):
            posted = now - timedelta(days=day) + timedelta(hours=hour - now.hour)
            with_image = rng.random() < 0.4
            # Afternoons and images do better; weekends a little worse.
            base = 6 + (14 if hour == 14 else 6 if hour == 17 else 0) + (8 if with_image else 0)
            base = int(base * (0.7 if posted.weekday() >= 5 else 1.0) * rng.uniform(0.6, 1.4))
            tweet_id = f"9{posted:%Y%m%d%H}{n:04d}"
            conn.execute(
                "insert into public.tweets (tweet_id, content, image_url, posted_at) values (%s, %s, %s, %s)",
                (
                    tweet_id,
                    f"(simulated history) note #{n + 1} about Postgres and Python",
                    "https://example.invalid/history.jpg" if with_image else None,
                    posted,
                ),
            )
            for snap in range(1, 4):
                grow = snap / 3
                impressions = int(base * 40 * grow)
                conn.execute(
                    "insert into public.stats (tweet_id, likes, retweets, replies, impressions, collected_at)"
                    " values (%s, %s, %s, %s, %s, %s)",
                    (
                        tweet_id,
                        int(base * grow),
                        int(base * 0.3 * grow),
                        int(base * 0.2 * grow),
                        impressions,
                        min(posted + timedelta(hours=snap * 8), now),
                    ),
                )
            n += 1
    return n


def render(conn: psycopg.Connection, timeline: Timeline, worker: Worker) -> Group:
    jobs = Table(title="jobs (kind × status)", expand=True)
    for col in ("kind", "queued", "running", "succeeded", "failed/dead"):
        jobs.add_column(col, justify="right" if col != "kind" else "left")
    counts: dict[str, dict[str, int]] = {}
    for kind, status, n in conn.execute("select kind, status, jobs from public.queue_depth"):
        counts.setdefault(kind, {})[status] = n
    for kind in sorted(counts):
        c = counts[kind]
        jobs.add_row(
            kind,
            str(c.get("queued", 0)),
            str(c.get("running", 0)),
            str(c.get("succeeded", 0)),
            str(c.get("failed", 0) + c.get("dead", 0)),
        )

    tweets = Table(title="posted today (from the tweets table)", expand=True)
    for col in ("tweet", "text", "image", "likes", "RTs", "replies", "impr."):
        tweets.add_column(col)
    for row in conn.execute(
        "select tweet_id, content, image_url is not null, engagement from public.tweets"
        " where posted_at > now() - interval '1 hour' order by posted_at"
    ):
        e = row[3] or {}
        tweets.add_row(
            row[0][-6:],
            Text(row[1][:60] + ("…" if len(row[1]) > 60 else "")),
            "🖼" if row[2] else "",
            str(e.get("likes", 0)),
            str(e.get("retweets", 0)),
            str(e.get("replies", 0)),
            str(e.get("impressions", 0)),
        )

    replies = Table(title="replies and mentions", expand=True)
    for col in ("from", "text", "liked", "reply draft"):
        replies.add_column(col)
    for author, content, liked, draft in conn.execute(
        "select coalesce('@' || r.author_username, r.author_id), r.content, r.liked, d.status"
        " from public.replies r left join public.reply_drafts d on d.reply_id = r.reply_id"
        " order by r.id"
    ):
        replies.add_row(
            author,
            Text(content[:50]),
            "[green]♥ liked[/]" if liked else "…",
            ""
            if draft is None
            else "[green]replied[/]"
            if draft == "posted"
            else draft.replace("_", " "),
        )

    status = worker_line(worker)
    log = Text.from_markup("\n".join(timeline.events[-9:]) or "starting…")
    return Group(
        Text.from_markup(SANDBOX_BANNER),
        Text(status, style="cyan"),
        jobs,
        tweets,
        replies,
        Panel(log, title="what is happening", border_style="blue"),
    )


def worker_line(worker: Worker) -> str:
    """The status line: a worker stopped on purpose reads as stopped, not degraded."""
    _ok, health = worker.health()
    if health["status"] in ("stopped", "stopping"):
        verb = "stopped (on purpose)" if health["status"] == "stopped" else "stopping gracefully"
        return f"worker {verb} · database {'up' if health['database']['up'] else 'down'}"
    return (
        f"worker {health['status']} · database {'up' if health['database']['up'] else 'down'} · "
        f"doorbell {'connected' if health['doorbell']['connected'] else 'down'} · "
        f"running jobs {health['running_jobs']}"
    )


async def wait_until(check: Callable[[], bool], within_s: float, live: Callable[[], None]) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        live()
        if check():
            return True
        await asyncio.sleep(0.25)
    return False


THREAD = (
    "How chirpbase posts exactly once, a thread 🧵",
    "1. The intent is written to Postgres before X is called.",
    "2. An unknown outcome is looked up on the timeline before any retry.",
    "3. Each part of a thread is its own row: a crash resumes at the next part.",
)


async def post_thread_and_poll(
    one: Callable[..., Any], timeline: Timeline, refresh: Callable[[], None]
) -> int:
    """A thread (each part a reply to the one before) and a poll, scheduled as rows. Returns
    the poll's row id."""
    thread = one(
        "insert into public.scheduled_tweets (thread) values (%s) returning id", list(THREAD)
    )[0]
    timeline.add(f"operator inserted scheduled_tweets #{thread}: a thread of {len(THREAD)} parts")
    poll = one(
        "insert into public.scheduled_tweets (content, poll_options, poll_duration_minutes)"
        " values (%s, %s, 60) returning id",
        "Where does your job queue live?",
        ["Postgres", "Redis", "A cloud queue", "What queue?"],
    )[0]
    timeline.add(f"operator inserted scheduled_tweets #{poll}: a poll, 4 options, 60 minutes")

    def status(row_id: int) -> str:
        return str(one("select status from public.scheduled_tweets where id = %s", row_id)[0])

    await wait_until(lambda: status(thread) in ("posted", "failed"), 20, refresh)
    ids = one("select thread_tweet_ids, error from public.scheduled_tweets where id = %s", thread)
    if status(thread) == "posted":
        chain = " ← ".join(i[-4:] for i in reversed(ids[0]))
        timeline.add(f"thread posted, each part replying to the one before: {chain}")
    else:
        timeline.add(f"[red]thread failed: {ids[1]}[/]")
    await wait_until(lambda: status(poll) in ("posted", "failed"), 20, refresh)
    timeline.add(f"poll {status(poll)} (votes arrive on the X stand-in as time passes)")
    return int(poll)


def poll_results(one: Callable[..., Any], poll: int) -> str:
    row = one(
        "select p.options, p.voting_status from public.polls p join public.scheduled_tweets s"
        " on s.tweet_id = p.tweet_id where s.id = %s",
        poll,
    )
    if row is None:
        return "no poll results collected yet"
    votes = ", ".join(f"{o['label']} {o['votes']}" for o in row[0])
    return f"poll results ({row[1]}): {votes}"


CONSOLE_TOPICS = (
    ("covering indexes", True),
    ("why VACUUM matters", True),
    ("advisory locks for cron jobs", False),
)


def add_console_material(conn: psycopg.Connection) -> None:
    """Drafts awaiting approval (tweets, a thread, a poll) and a week of posts, so every
    console page has something."""
    conn.execute(
        "update public.configs set value = value || '{\"require_approval\": true}'"
        " where key = 'generation'"
    )
    for topic, with_image in CONSOLE_TOPICS:
        conn.execute(
            "insert into public.scheduled_tweets (topic, with_image) values (%s, %s)",
            (topic, with_image),
        )
    # A thread to edit part by part, and a poll, awaiting approval too.
    conn.execute(
        "insert into public.scheduled_tweets (topic, thread_parts) values ('partial indexes', 3)"
    )
    conn.execute(
        "insert into public.scheduled_tweets (topic, poll_options, poll_duration_minutes)"
        " values ('where a job queue lives', %s, 1440)",
        (["Postgres", "Redis", "A cloud queue"],),
    )
    rng = random.Random(11)
    for day in range(1, 8):
        for hour in rng.sample([8, 11, 14, 17, 20], 2):
            conn.execute(
                "insert into public.scheduled_tweets (content, scheduled_for) values"
                " (%s, date_trunc('day', now()) + make_interval(days => %s, hours => %s))",
                (f"Planned post for day {day}: one small Postgres habit at a time.", day, hour),
            )


def enable_conversation(conn: psycopg.Connection, timeline: Timeline) -> None:
    conn.execute(
        "update public.configs set value = value || '{\"enabled\": true}'"
        " where key = 'conversation'"
    )
    timeline.add("conversation enabled: posts that summon the account get reply drafts")


async def reply_to_a_mention(
    conn: psycopg.Connection,
    dsn: str,
    stack: SandboxStack,
    mention_id: str,
    timeline: Timeline,
    refresh: Callable[[], None],
) -> None:
    """The mention's reply draft (written by the worker when the poll stored the mention),
    approved as `chirpbase replies approve` does, then posted once under the mention."""

    def draft() -> tuple[Any, ...] | None:
        return conn.execute(
            "select id, status, content, created_at, tweet_id from public.reply_drafts"
            " where reply_id = %s",
            (mention_id,),
        ).fetchone()

    if not await wait_until(lambda: draft() is not None, 20, refresh):
        timeline.add("[red]no reply draft for the mention[/]")
        return
    draft_id, _status, content, _at, _ = draft()  # type: ignore[misc]
    waiting = conn.execute(
        "select count(*) from public.reply_drafts where status = 'awaiting_approval'"
    ).fetchone()
    timeline.add(
        f"reply draft #{draft_id} for @{MENTION[0]} awaits approval "
        f"({waiting[0] if waiting else 0} drafts in all, one per post that summoned the account)"
    )
    timeline.add(f"  “{content[:90]}{'…' if len(content) > 90 else ''}”")
    await wait_until(lambda: False, PACE_S, refresh)
    with Operator.connect(dsn) as op:
        op.approve_reply(draft_id)
    timeline.add(f"operator approved it: chirpbase replies approve {draft_id}")
    if not await wait_until(lambda: (draft() or ("",) * 2)[1] == "posted", 20, refresh):
        row = draft()
        timeline.add(f"[red]reply draft #{draft_id} is {row[1] if row else 'gone'}[/]")
        return
    (reply,) = [
        t
        for t in stack.x.posted_tweets()
        if {"type": "replied_to", "id": mention_id} in (t.referenced_tweets or [])
    ]
    timeline.add(
        f"reply posted under @{MENTION[0]}'s post ({reply.text[:40]}…), once, "
        "billed as a summoned reply"
    )


async def run_demo(keep_console: bool = False) -> Path:
    console = Console()
    console.print(SANDBOX_BANNER)
    console.print("preparing the local database (resets chirpbase's tables in it)…")
    reset_database()
    setup_logging("WARNING")
    dsn = pg.app_dsn(DB)
    conn = psycopg.connect(dsn, autocommit=True)
    history = seed_history(conn)
    timeline = Timeline()
    timeline.add(
        f"loaded {history} simulated past tweets with stats (labelled '(simulated history)')"
    )
    crons = [
        r[0]
        for r in conn.execute(
            "select jobname from cron.job where jobname like 'chirpbase-%' order by 1"
        )
    ]
    timeline.add(f"pg_cron schedules in place: {', '.join(crons)}")

    async with SandboxStack(pg.admin_dsn(DB)) as stack:
        stack.openai.set_chat_responder(_tweet_writer)
        stack.openai.set_latency(chat=0.8, images=1.5)
        password = secrets.token_urlsafe(9)
        settings = stack.settings(
            dsn,
            doorbell_enabled=True,
            poll_interval_s=5,
            console_password_hash=hash_password(password),
            console_cookie_secure=False,  # plain http on localhost
            http_port=int(os.environ.get("CHIRPBASE_CONSOLE_PORT", "8787")) if keep_console else 0,
        )
        worker = Worker(settings)
        worker.mount(console_mount(settings, health=worker.health))
        task = asyncio.create_task(worker.run())
        await asyncio.wait_for(worker.ready.wait(), 15)
        console_url = f"http://127.0.0.1:{worker.mount_ports['console']}/console/"
        timeline.add(f"worker ready, /health on port {worker.http_port}")
        timeline.add(f"operator console: {console_url} (password {password})")
        console.print(f"[bold]operator console[/]: {console_url}  password: [bold]{password}[/]")

        with Live(render(conn, timeline, worker), console=console, refresh_per_second=4) as live:

            def refresh() -> None:
                live.update(render(conn, timeline, worker))

            def one(sql: str, *args: Any) -> Any:
                return conn.execute(sql, args or None).fetchone()

            await wait_until(lambda: worker.doorbell.database_subscribed, 15, refresh)
            timeline.add("Realtime doorbell subscribed to jobs and configs")
            await wait_until(lambda: False, PACE_S, refresh)

            written = one(
                "insert into public.scheduled_tweets (content) values (%s) returning id",
                "Shipping chirpbase: an X account run from Postgres rows. Insert a row, get a tweet. 🐘",
            )[0]
            timeline.add(f"operator inserted scheduled_tweets #{written} (exact text)")
            generated = one(
                "insert into public.scheduled_tweets (topic, with_image) values (%s, true) returning id",
                "measuring queries with EXPLAIN ANALYZE",
            )[0]
            timeline.add(f"operator inserted scheduled_tweets #{generated} (topic, with image)")

            def posted(row_id: int) -> bool:
                return (
                    one("select status from public.scheduled_tweets where id = %s", row_id)[0]
                    == "posted"
                )

            await wait_until(lambda: posted(written), 20, refresh)
            timeline.add("written tweet posted to the X stand-in")
            await wait_until(lambda: False, PACE_S, refresh)
            await wait_until(lambda: posted(generated), 30, refresh)
            row = one(
                "select status, image_url, error from public.scheduled_tweets where id = %s",
                generated,
            )
            if row[0] == "posted":
                timeline.add(f"generated tweet posted with its image ({row[1].rsplit('/', 1)[-1]})")
            else:
                timeline.add(f"[red]generated tweet is {row[0]}: {row[2]}[/]")
            poll = await post_thread_and_poll(one, timeline, refresh)

            ours = [t for t in stack.x.posted_tweets()]
            for i, (username, text) in enumerate(REPLIERS):
                if not any(u.username == username for u in stack.x.users.values()):
                    stack.x.add_user(username)
                stack.x.add_reply(username, ours[i % len(ours)].id, text)
            stack.x.add_user(MENTION[0])
            mention = stack.x.add_mention(*MENTION)
            timeline.add(f"{len(REPLIERS)} people replied and 1 mentioned the bot on X")
            enable_conversation(conn, timeline)
            one("select public.enqueue_job('poll_mentions', '{}'::jsonb, now(), 5, 'demo-poll-1')")
            timeline.add("poll_mentions queued (pg_cron does this every minute)")
            await wait_until(
                lambda: one("select count(*) from public.replies")[0] >= len(REPLIERS) + 1,
                20,
                refresh,
            )
            ingested = one("select count(*) from public.replies")[0]
            timeline.add(f"{ingested} replies and mentions stored (owned reads, $0.001 each)")
            # X's access tier decides about likes: Enterprise only since 2026-04-20.
            notice = one("select public.x_capability_notice('likes')")[0]
            if notice:
                timeline.add(f"no likes: {notice.split(' (only on')[0]}")
            else:
                await wait_until(
                    lambda: one("select count(*) from public.replies where liked")[0] >= ingested,
                    20,
                    refresh,
                )
                liked = one("select count(*) from public.replies where liked")[0]
                timeline.add(f"{liked} replies and mentions liked")
            await wait_until(lambda: False, PACE_S, refresh)
            await reply_to_a_mention(conn, dsn, stack, mention.id, timeline, refresh)

            rng = random.Random(3)
            for round_no in range(1, 4):
                for poll_tweet in list(stack.x.polls.by_tweet):  # people vote, Postgres mostly
                    stack.x.polls.vote(poll_tweet, 1, rng.randint(8, 20))
                    stack.x.polls.vote(poll_tweet, rng.randint(2, 4), rng.randint(1, 6))
                for tweet in ours:
                    stack.x.advance_metrics(
                        tweet.id,
                        like_count=rng.randint(3, 12),
                        retweet_count=rng.randint(0, 4),
                        impression_count=rng.randint(150, 600),
                    )
                one(
                    "select public.enqueue_job('collect_stats', '{\"days\": 1}'::jsonb, now(), 1, %s)",
                    f"demo-stats-{round_no}",
                )

                def stats_done(n: int = round_no) -> bool:
                    return bool(
                        one(
                            "select count(*) >= %s from public.jobs"
                            " where kind = 'collect_stats' and status = 'succeeded'",
                            n,
                        )[0]
                    )

                await wait_until(stats_done, 15, refresh)
                timeline.add(
                    f"engagement grew; collect_stats round {round_no} stored (hourly in production)"
                )
                timeline.add(poll_results(one, poll))
                await wait_until(
                    lambda: False, PACE_S, refresh
                )  # let people watch the numbers move

            row = one(
                "select coalesce(sum(estimated_cost_usd)"
                " filter (where endpoint not like 'openai:%'), 0),"
                " coalesce(sum(estimated_cost_usd) filter (where endpoint like 'openai:%'), 0)"
                " from public.api_usage"
            )
            timeline.add(
                f"priced by operation: X ${float(row[0]):.3f}, OpenAI ${float(row[1]):.3f} "
                "(chirpbase status shows spend, projection and budget)"
            )
            if keep_console:
                add_console_material(conn)
                timeline.add("drafts awaiting approval and a week of posts added: try the console")
                refresh()
            else:
                worker.stop()
                await asyncio.wait_for(task, 30)
                timeline.add("worker stopped on purpose: the demo is over")
                refresh()

        if keep_console:
            await keep_serving(console, worker, task, console_url, password)

    from worker.report import build_report

    out = ROOT / "reports" / f"demo-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    report = build_report(dsn, since="30d", out_dir=out)
    conn.close()
    console.print()
    console.print(f"[bold green]demo finished[/] in {time.monotonic() - timeline.started:.0f} s")
    console.print(f"report: [bold]{report.files.get('html', out)}[/]")
    console.print("  " + "  ".join(sorted(p.name for p in report.files.values())))
    console.print("[dim]All of the above ran against local stand-ins (SANDBOX).[/]")
    return out


async def keep_serving(
    console: Console, worker: Worker, task: asyncio.Task[None], url: str, password: str
) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop the worker gracefully."""
    console.print()
    console.print(
        Panel(
            f"[bold]{url}[/]\npassword: [bold]{password}[/]\n\n"
            "Drafts await approval in the inbox; the calendar has a week of posts. "
            "Everything is a row in the local database: try `uv run chirpbase status` too.\n"
            "Ctrl-C stops the worker and the sandbox.",
            title="operator console (SANDBOX)",
            border_style="green",
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    worker.stop()
    await asyncio.wait_for(task, 30)
    console.print(worker_line(worker))


def main() -> None:
    try:
        asyncio.run(run_demo(keep_console="--console" in sys.argv[1:]))
    except pg.LocalStackError as exc:
        raise SystemExit(f"demo: {exc}") from None


if __name__ == "__main__":
    main()
