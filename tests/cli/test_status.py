"""status: queue, posts, quota, alerts and worker health, as tables or JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from tests.cli.conftest import Cli
from tests.sql.helpers import Jsonb, enqueue

HEALTH = {
    "status": "ok",
    "worker_id": "worker-test-1",
    "uptime_s": 42.0,
    "database": {"up": True, "down_for_s": None},
    "doorbell": {"enabled": True, "connected": True, "down_for_s": None},
    "running_jobs": 2,
}


@pytest.fixture
def health_url() -> Iterator[str]:
    """A stand-in worker answering GET /health with HEALTH."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(HEALTH).encode()
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def seed(conn: psycopg.Connection) -> None:
    enqueue(conn, "noop")
    enqueue(conn, "collect_stats")
    conn.execute(
        "insert into public.scheduled_tweets (content, scheduled_for) values ('Soon: a tip', now() + interval '1 hour')"
    )
    posted = datetime.now(UTC) - timedelta(hours=3)
    conn.execute(
        "insert into public.tweets (tweet_id, content, posted_at) values ('1001', 'Posted earlier today', %s)",
        (posted,),
    )
    conn.execute(
        "insert into public.stats (tweet_id, likes, retweets, replies, impressions, collected_at)"
        " values ('1001', 1, 0, 0, 10, now() - interval '2 hours'), ('1001', 17, 4, 3, 900, now())"
    )
    conn.execute(
        "update public.configs set value = value || %s where key = 'quotas'",
        (Jsonb({"plan": "basic"}),),
    )
    conn.execute(
        "insert into public.quota_usage (month, resource, used) values (public.current_month(), 'posts', 2700)"
    )
    conn.execute(
        "select public.record_api_usage('POST /2/tweets', 1, 1, 0, estimated_cost_usd => 3.5)"
    )
    conn.execute(
        "select public.raise_alert('warning', 'quota_threshold', 'quota_threshold:posts', 'posts at 90% of the monthly cap')"
    )


def test_status_json_on_a_fresh_database(cli: Cli) -> None:
    run = cli("status", "--json")
    assert run.code == 0, run
    snap = run.json()
    assert snap["queue"] == {} and snap["upcoming"] == [] and snap["recent"] == []
    assert snap["alerts"] == [] and snap["worker"] is None
    assert {q["resource"] for q in snap["quota"]} == {"posts", "reads", "openai_usd", "spend_usd"}
    assert snap["budget"]["spent_usd"] == 0
    assert snap["budget"]["budget_usd"] == 50 and snap["budget"]["cycle_ends"]
    access = snap["access"]
    assert access["tier"] == "pay_per_use"
    available = {c["capability"]: c["available"] for c in access["capabilities"]}
    assert available == {
        "posts": True, "media": True, "reads": True, "summoned_replies": True,
        "unsummoned_replies": False, "likes": False, "quotes": False,
    }  # fmt: skip
    assert snap["spend_by_operation"] == [] and snap["stats_read"] is None


def test_status_json_with_data_and_health(
    cli: Cli, conn: psycopg.Connection, health_url: str
) -> None:
    seed(conn)
    run = cli("status", "--json", "--health-url", health_url)
    assert run.code == 0, run
    snap = run.json()
    assert snap["queue"]["noop"] == {"queued": 1}
    assert snap["queue"]["post_tweet"] == {"queued": 1}
    assert [u["content"] for u in snap["upcoming"]] == ["Soon: a tip"]
    recent = snap["recent"][0]
    assert (
        recent["content"],
        recent["likes"],
        recent["retweets"],
        recent["replies"],
        recent["impressions"],
    ) == ("Posted earlier today", 17, 4, 3, 900)  # the latest stats, not the first
    posts = next(q for q in snap["quota"] if q["resource"] == "posts")
    assert (posts["used"], posts["cap"], posts["percent"]) == (2700, 3000, 90)
    assert snap["budget"]["spent_usd"] == 3.5 and snap["budget"]["plan"] == "basic"
    assert snap["alerts"][0]["message"] == "posts at 90% of the monthly cap"
    assert (
        snap["worker"]["reachable"] is True
        and snap["worker"]["body"]["worker_id"] == "worker-test-1"
    )


def test_status_tables(cli: Cli, conn: psycopg.Connection, health_url: str) -> None:
    seed(conn)
    run = cli("status", env={"CHIRPBASE_HEALTH_URL": health_url})
    assert run.code == 0, run
    for text in (
        "Queue",
        "collect_stats",
        "Upcoming posts",
        "Soon: a tip",
        "Recent posts",
        "Posted earlier today",
        "Quota and budget",
        "2,700",
        "3,000 (90%)",
        "$3.50",
        "Open alerts",
        "posts at 90% of the monthly cap",
        "worker health: ok",
        "worker-test-1",
        "doorbell connected",
    ):
        assert text in run.out, text


def test_status_shows_spend_by_operation_the_projection_and_the_stats_read(
    cli: Cli, conn: psycopg.Connection
) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'quotas'",
        (Jsonb({"monthly_budget_usd": 0.5}),),
    )
    conn.execute("select public.record_x_usage('tweets', 'post_with_url', posts => 1)")
    conn.execute(
        "select public.record_x_usage('mentions', 'owned_read', resource_kind => 'post',"
        " resource_ids => array['1', '2', '3'])"
    )
    enqueue(conn, "collect_stats")
    conn.execute(
        "update public.jobs set status = 'succeeded', finished_at = now(), result = %s"
        " where kind = 'collect_stats'",
        (
            Jsonb(
                {
                    "source": "owned_timeline",
                    "estimated_usd": {"owned_timeline": 0.02, "lookup": 0.1},
                    "tweets": 20,
                }
            ),
        ),
    )
    conn.execute("select public.pause_x_capability('likes', 'client-not-enrolled')")
    snap = cli("status", "--json").json()
    assert snap["budget"]["spent_usd"] == pytest.approx(0.203)
    assert snap["budget"]["budget_percent"] == pytest.approx(40.6)
    by_op = {(r["endpoint"], r["operation"]): r["cost_usd"] for r in snap["spend_by_operation"]}
    assert by_op == {("tweets", "post_with_url"): 0.2, ("mentions", "owned_read"): 0.003}
    assert snap["stats_read"]["source"] == "owned_timeline"
    run = cli("status")
    assert run.code == 0, run
    for text in (
        "Spend by operation",
        "post_with_url",
        "$0.200",
        "X access tier pay_per_use",
        "✗ likes",
        "only on enterprise",
        "stats read via owned timeline",
        "budget $0.50",
    ):
        assert text in run.out, text


def test_status_skips_an_unreachable_worker(cli: Cli) -> None:
    run = cli("status", "--health-url", "http://127.0.0.1:9/health")
    assert run.code == 0, run
    assert "worker health: unreachable" in run.out
    snap = cli("status", "--json", "--health-url", "http://127.0.0.1:9").json()
    assert snap["worker"]["reachable"] is False and snap["worker"]["url"].endswith("/health")
