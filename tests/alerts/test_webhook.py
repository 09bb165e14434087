"""Webhook delivery: payload shape, rate limiting and coalescing, retries, redaction, a real worker."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from aiohttp import web

from sandbox.stack import CREDENTIALS
from tests.alerts.conftest import FAST, open_alert, raise_alert
from tests.sql.helpers import enqueue, scalar, set_config
from tests.waiting import wait_for
from tests.workers import running
from worker.alerts.policy import AlertPolicy
from worker.alerts.webhook import AlertNotifier
from worker.config.live import LiveConfig
from worker.db import Database
from worker.runtime.worker import Worker
from worker.settings import Settings

HOOK_PATH = "/services/T0000/B0000/hook-path-secret-8d1f"


@dataclass
class Hook:
    """A local stand-in for a Slack/Discord incoming webhook."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # queued answers

    def texts(self) -> list[str]:
        return [b["content"] for b in self.bodies]


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()

    async def receive(request: web.Request) -> web.Response:
        raw = await request.text()
        h.raw.append(raw)
        h.bodies.append(json.loads(raw))
        h.content_types.append(request.content_type)
        status, headers = h.replies.pop(0) if h.replies else (204, {})
        text = None if status == 204 else ("ok" if status < 300 else "upstream exploded")
        return web.Response(status=status, text=text, headers=headers)

    app = web.Application()
    app.router.add_post(HOOK_PATH, receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    h.url = f"http://127.0.0.1:{runner.addresses[0][1]}{HOOK_PATH}"
    yield h
    await runner.cleanup()


def configure(conn: psycopg.Connection, url: str | None, min_interval: int = 0) -> None:
    set_config(conn, "alerts", {"webhook_url": url, "min_interval_seconds": min_interval})


async def make_notifier(
    database: Database, policy: AlertPolicy = FAST, secrets: tuple[str, ...] = ()
) -> AlertNotifier:
    config = LiveConfig(database)
    await config.reload()
    return AlertNotifier(
        database, config, "worker-a", policy, source="chirpbase (test)", secrets=secrets
    )


@pytest.fixture
async def notifier(
    hook: Hook, conn: psycopg.Connection, database: Database
) -> AsyncIterator[AlertNotifier]:
    configure(conn, hook.url)
    n = await make_notifier(database)
    yield n
    await n.aclose()


def delivery_state(conn: psycopg.Connection) -> dict[str, Any]:
    cur = conn.execute("select * from public.alert_delivery where id = 1")
    names = [d.name for d in cur.description or []]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


# -- shape -------------------------------------------------------------------------------------


async def test_payload_is_slack_and_discord_compatible(
    notifier: AlertNotifier, hook: Hook, conn: psycopg.Connection
) -> None:
    raise_alert(
        conn,
        "job_dead:post_tweet",
        level="critical",
        message="post_tweet job 7 is dead: <!channel> & @everyone said no",
    )
    raise_alert(conn, "job_dead:post_tweet", level="critical", message="post_tweet job 8 is dead")
    raise_alert(conn, "quota_threshold:posts", message="posts at 80% of the monthly cap")

    delivery = await notifier.deliver_once()
    assert delivery is not None and delivery.ok and delivery.alerts == 2
    [body] = hook.bodies
    assert hook.content_types == ["application/json"]
    assert set(body) >= {"text", "content", "alerts", "allowed_mentions"}
    assert body["allowed_mentions"] == {"parse": []}  # Discord: no pings from alert text
    content = body["content"].splitlines()
    assert content[0] == "chirpbase (test): 2 new"
    assert content[1] == "🔴 CRITICAL job_dead: post_tweet job 8 is dead (×2)"
    assert content[2] == "🟠 WARNING quota_threshold: posts at 80% of the monthly cap"
    # Slack: its control characters escaped, so `<!channel>` is text, not a mention.
    assert "<!channel>" not in body["text"] and "&lt;!channel&gt;" not in body["content"]
    assert body["text"] == body["content"].replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;"
    )
    [dead, quota] = body["alerts"]
    assert dead["state"] == "raised" and dead["dedupe_key"] == "job_dead:post_tweet"
    assert dead["level"] == "critical" and dead["occurrences"] == 2
    assert quota["kind"] == "quota_threshold"
    assert scalar(conn, "select count(*) from public.alerts where notified_at is null") == 0
    # Nothing new: nothing sent.
    assert await notifier.deliver_once() is None
    assert len(hook.bodies) == 1


async def test_resolutions_are_sent_once(
    notifier: AlertNotifier, hook: Hook, conn: psycopg.Connection
) -> None:
    raise_alert(conn, "x_auth", level="critical", message="X rejected the credentials")
    assert (await notifier.deliver_once()).ok  # type: ignore[union-attr]
    conn.execute("select public.close_alert('x_auth', 'X accepted a call again')")
    assert (await notifier.deliver_once()).ok  # type: ignore[union-attr]
    assert hook.texts()[1].splitlines() == [
        "chirpbase (test): 1 resolved",
        "✅ RESOLVED x_auth: X rejected the credentials — resolved: X accepted a call again",
    ]
    assert hook.bodies[1]["alerts"][0]["resolution"] == "X accepted a call again"
    assert await notifier.deliver_once() is None
    # Raised and resolved between two messages (an outage recorded afterwards): sent once.
    conn.execute(
        "insert into public.alerts (level, kind, dedupe_key, message, details, resolved_at)"
        " values ('critical', 'database_down', 'database_down', 'database unreachable for 2m',"
        ' \'{"resolution": "back"}\', now())'
    )
    assert (await notifier.deliver_once()).ok  # type: ignore[union-attr]
    assert "✅ RESOLVED database_down: database unreachable for 2m" in hook.texts()[2]
    assert await notifier.deliver_once() is None
    assert (
        scalar(conn, "select count(*) from public.alerts where resolved_notified_at is null") == 0
    )


async def test_nothing_is_sent_without_a_webhook(
    hook: Hook, conn: psycopg.Connection, database: Database
) -> None:
    configure(conn, None)
    n = await make_notifier(database)
    raise_alert(conn, "job_dead:noop")
    assert await n.deliver_once() is None
    assert hook.bodies == []
    assert open_alert(conn, "job_dead:noop")["notified_at"] is None  # type: ignore[index]
    # Configured later: the open alert still goes out.
    configure(conn, hook.url)
    await n.config.reload()
    assert (await n.deliver_once()).ok  # type: ignore[union-attr]
    assert "job_dead" in hook.texts()[0]
    await n.aclose()


# -- rate limit --------------------------------------------------------------------------------


async def test_rate_limit_coalesces_alerts_into_one_message(
    hook: Hook, conn: psycopg.Connection, database: Database
) -> None:
    configure(conn, hook.url, min_interval=3600)
    n = await make_notifier(database)
    other_replica = await make_notifier(database)
    raise_alert(conn, "job_dead:noop", message="first")
    assert (await n.deliver_once()).ok  # type: ignore[union-attr]
    raise_alert(conn, "job_failures:like_reply", message="second")
    raise_alert(conn, "quota_threshold:reads", message="third")
    # Within the interval, from any replica: held back.
    assert await n.deliver_once() is None
    assert await other_replica.deliver_once() is None
    assert len(hook.bodies) == 1
    # The interval elapses (moved back instead of waited for): one message with both.
    conn.execute("update public.alert_delivery set last_sent_at = now() - interval '2 hours'")
    assert (await other_replica.deliver_once()).alerts == 2  # type: ignore[union-attr]
    assert len(hook.bodies) == 2
    lines = hook.texts()[1].splitlines()
    assert lines[0] == "chirpbase (test): 2 new"
    assert [line.split(": ", 1)[1] for line in lines[1:]] == ["second", "third"]
    assert delivery_state(conn)["messages_sent"] == 2
    await n.aclose()
    await other_replica.aclose()


async def test_a_long_backlog_fits_one_message(
    notifier: AlertNotifier, hook: Hook, conn: psycopg.Connection
) -> None:
    for i in range(40):
        raise_alert(conn, f"job_dead:kind{i}", message=f"job {i} is dead " + "x" * 80)
    assert (await notifier.deliver_once()).alerts == 40  # type: ignore[union-attr]
    content = hook.bodies[0]["content"]
    assert len(content) <= 2000  # Discord's limit
    assert content.splitlines()[-1].startswith("…and ")
    assert len(hook.bodies[0]["alerts"]) == 40
    assert scalar(conn, "select count(*) from public.alerts where notified_at is null") == 0


# -- failures ----------------------------------------------------------------------------------


async def test_a_failed_delivery_is_retried_with_backoff(
    hook: Hook, conn: psycopg.Connection, database: Database
) -> None:
    configure(conn, hook.url)
    slow = dataclasses.replace(FAST, retry_initial_s=60, retry_max_s=600)
    n = await make_notifier(database, slow)
    raise_alert(conn, "job_dead:noop", message="dead")
    hook.replies.append((500, {}))
    failed = await n.deliver_once()
    assert failed is not None and not failed.ok
    assert failed.status == 500 and failed.retry_in_s == 60
    assert failed.error == "HTTP 500: upstream exploded"
    state = delivery_state(conn)
    assert state["failures"] == 1 and state["last_error"] == "HTTP 500: upstream exploded"
    assert open_alert(conn, "job_dead:noop")["notified_at"] is None  # type: ignore[index]
    assert await n.deliver_once() is None  # backing off
    assert len(hook.bodies) == 1
    # The backoff elapses: the same alert goes out, and the state is reset.
    conn.execute("update public.alert_delivery set next_attempt_at = now()")
    hook.replies.append((429, {"Retry-After": "120"}))
    again = await n.deliver_once()
    assert again is not None and again.status == 429 and again.retry_in_s == 120  # honoured
    conn.execute("update public.alert_delivery set next_attempt_at = now()")
    ok = await n.deliver_once()
    assert ok is not None and ok.ok
    assert [b["alerts"][0]["message"] for b in hook.bodies] == ["dead", "dead", "dead"]
    state = delivery_state(conn)
    assert state["failures"] == 0 and state["next_attempt_at"] is None
    assert open_alert(conn, "job_dead:noop")["notified_at"] is not None  # type: ignore[index]
    await n.aclose()


async def test_a_failing_webhook_raises_its_own_alert(
    hook: Hook, conn: psycopg.Connection, database: Database
) -> None:
    configure(conn, hook.url)
    n = await make_notifier(database, dataclasses.replace(FAST, retry_initial_s=0))
    raise_alert(conn, "job_dead:noop")
    hook.replies += [(503, {})] * 3
    for _ in range(3):
        assert not (await n.deliver_once()).ok  # type: ignore[union-attr]
    webhook_alert = open_alert(conn, "alert_webhook")
    assert webhook_alert is not None and "3 deliveries in a row" in webhook_alert["message"]
    assert HOOK_PATH not in webhook_alert["message"]
    ok = await n.deliver_once()
    assert ok is not None and ok.ok
    assert open_alert(conn, "alert_webhook") is None  # resolved by the success
    assert all(a["kind"] != "alert_webhook" for b in hook.bodies for a in b["alerts"])
    await n.aclose()


async def test_unreachable_webhook_fails_without_leaking_its_url(
    conn: psycopg.Connection, database: Database
) -> None:
    url = f"http://127.0.0.1:9{HOOK_PATH}"  # nothing listens on port 9
    configure(conn, url)
    n = await make_notifier(database)
    raise_alert(conn, "job_dead:noop")
    failed = await n.deliver_once()
    assert failed is not None and not failed.ok and failed.status is None
    assert "ClientConnectorError" in (failed.error or "")
    assert (
        HOOK_PATH not in (failed.error or "")
        and HOOK_PATH not in delivery_state(conn)["last_error"]
    )
    await n.aclose()


# -- secrets -----------------------------------------------------------------------------------


async def test_secrets_are_redacted(
    hook: Hook, conn: psycopg.Connection, database: Database
) -> None:
    configure(conn, hook.url)
    secret = CREDENTIALS["x_api_secret"]
    n = await make_notifier(database, secrets=(secret, CREDENTIALS["openai_api_key"]))
    raise_alert(
        conn,
        "x_auth",
        level="critical",
        message=f"X said no to consumer secret {secret}; OpenAI key sk-proj-a1b2c3d4e5f6g7h8; "
        f"sent Authorization: Bearer {CREDENTIALS['x_bearer_token']}",
    )
    conn.execute("select public.close_alert('x_auth', 'fixed ' || %s)", (secret,))
    assert (await n.deliver_once()).ok  # type: ignore[union-attr]
    raw = hook.raw[0]
    for value in (secret, "sk-proj-a1b2c3d4e5f6g7h8", CREDENTIALS["x_bearer_token"], HOOK_PATH):
        assert value not in raw
    content = hook.bodies[0]["content"]
    assert "consumer secret [REDACTED]" in content and "sk-[REDACTED]" in content
    assert "Bearer [REDACTED]" in content and "resolved: fixed [REDACTED]" in content
    await n.aclose()


# -- a real worker -----------------------------------------------------------------------------


def worker_settings(dsn: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        **CREDENTIALS,
        supabase_url="http://127.0.0.1:9",
        supabase_key="sandbox-service-role-key-for-alert-tests",
        database_url=dsn,
        environment="alerts-test",
        http_host="127.0.0.1",
        http_port=0,
        poll_interval_s=0.2,
        shutdown_grace_s=2,
        x_connect_timeout_s=0.5,  # the grace period must cover a call to X
        x_timeout_s=1.5,
        doorbell_enabled=False,
    )


async def test_a_worker_raises_delivers_and_resolves(
    hook: Hook, conn: psycopg.Connection, dsn: str
) -> None:
    configure(conn, hook.url)
    worker = Worker(worker_settings(dsn), kinds=["noop"])
    worker.alerts.policy = FAST
    async with running(worker):
        enqueue(conn, "noop", {"fail": "give_up"})
        await wait_for(lambda: hook.bodies, timeout=10, message="the dead-job alert")
        assert "🔴 CRITICAL job_dead: noop job" in hook.texts()[0]
        assert hook.texts()[0].startswith("chirpbase (alerts-test): 1 new")
        enqueue(conn, "noop")
        await wait_for(lambda: len(hook.bodies) >= 2, timeout=10, message="the resolution")
        assert "✅ RESOLVED job_dead" in hook.texts()[1]
        assert "a later noop job succeeded" in hook.texts()[1]
    assert scalar(conn, "select count(*) from public.alerts where resolved_at is null") == 0
