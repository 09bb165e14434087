"""`chirpbase webhook` end to end: the real CLI and XClient, the X stand-in, the x-webhook edge
function served by Deno, a real Postgres.

register → X's CRC against the function → subscriptions → a mention on X → a signed X Activity
API delivery → the function → exactly one `replies` row; the same mention polled by the worker
adds nothing; a delivery with a bad signature is refused; register twice changes nothing;
remove leaves X with no webhook and no subscription. The failure paths (function unreachable,
X failing half way, an invalid webhook, the one-webhook limit) each end in a clear message and a
state the next run completes.

The function's public URL is https without a port, as X demands; the stand-in routes that
origin to the Deno server on loopback (X itself never sees a local address).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from sandbox.stack import CREDENTIALS, SandboxStack
from sandbox.x_api.activity import (
    SUBSCRIPTIONS_CREATE,
    WEBHOOKS_CREATE,
)
from tests.waiting import wait_for
from tests.webhook_server import ServedWebhook, serving_x_webhook, sign
from tests.workers import running
from tests.xaccess import set_access_tier
from worker.ops.cli import app
from worker.runtime.worker import Worker

PUBLIC = "https://abcdefghijklmnop.supabase.co"
URL = f"{PUBLIC}/functions/v1/x-webhook"
EVENTS = ["post.mention.create", "post.reply.create"]


@dataclass
class Env:
    stack: SandboxStack
    conn: psycopg.Connection
    dsn: str
    function: ServedWebhook

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """`chirpbase <args> --database-url <dsn>` with the worker's environment, in a thread
        (the CLI runs its own event loop; the stand-in answers on this one)."""
        env = {**self.stack.env(self.dsn), "COLUMNS": "200"}
        argv = [*args, "--database-url", self.dsn]
        result = await asyncio.to_thread(CliRunner().invoke, app, argv, env=env)
        assert "Traceback" not in result.output, result.output
        for secret in CREDENTIALS.values():
            assert secret not in result.output, "a credential reached the CLI's output"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    def usernames(self) -> dict[str, str | None]:
        rows = self.conn.execute("select reply_id, author_username from public.replies")
        return dict(rows.fetchall())

    def replies(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "select reply_id, source, author_id from public.replies order by reply_id"
        ).fetchall()


@pytest.fixture
async def env(stack: SandboxStack, conn: psycopg.Connection, dsn: str) -> AsyncIterator[Env]:
    async with serving_x_webhook(secret=CREDENTIALS["x_api_secret"], db_url=dsn) as served:
        stack.x.activity.route(PUBLIC, served.url)
        yield Env(stack, conn, dsn, served)
        await stack.x.activity.drain()
    assert CREDENTIALS["x_api_secret"] not in served.output
    assert CREDENTIALS["x_bearer_token"] not in served.output


@pytest.mark.timeout(300)  # the first Deno run may fetch its npm packages
async def test_register_then_a_mention_is_pushed_once_and_polling_adds_nothing(env: Env) -> None:
    x = env.stack.x
    code, out, err = await env.cli("webhook", "register", "--url", URL)
    assert code == 0, (out, err)
    assert "registered webhook" in out and "subscribed post.mention.create" in out
    # X checked the function before it answered, and the subscriptions are in the account's
    # own user context (OAuth 1.0a), as X requires for mentions and replies.
    assert [r.passed for _, r in x.activity.crc_log] == [True]
    (webhook,) = x.activity.webhooks.values()
    assert (webhook.url, webhook.valid) == (URL, True)
    assert sorted(s.event_type for s in x.activity.subscriptions.values()) == EVENTS
    assert {s.filter["user_id"] for s in x.activity.subscriptions.values()} == {x.me.id}
    assert [r.auth for r in x.requests if r.endpoint == SUBSCRIPTIONS_CREATE] == ["user"] * 2
    row = env.conn.execute(
        "select webhook_id, webhook_url, webhook_valid, user_id from public.x_account"
    ).fetchone()
    assert row == (webhook.id, URL, True, x.me.id)  # user id asked from X once (me)
    recorded = env.conn.execute(
        "select subscription_id, event_type from public.x_activity_subscriptions order by 2"
    ).fetchall()
    assert recorded == sorted(((s.id, s.event_type) for s in x.activity.subscriptions.values()),
                              key=lambda r: r[1])  # fmt: skip

    fan = x.add_user("xaa_fan")
    mention = x.add_mention(fan.id, "hey @chirpbase_bot, pushed or polled?")
    ours = x.create_tweet(x.me.id, "a post of ours")
    reply = x.add_reply(fan.id, ours.id, "@chirpbase_bot nice post")
    await wait_for(lambda: len(env.replies()) == 2, timeout=10, message="the pushed posts")
    await x.activity.drain()
    assert sorted((d.event_type, d.outcome) for d in x.activity.deliveries) == [
        ("post.mention.create", "delivered"),
        ("post.reply.create", "delivered"),
    ]
    pushed = sorted([(mention.id, "webhook", fan.id), (reply.id, "webhook", fan.id)])
    assert env.replies() == pushed
    assert env.usernames() == {mention.id: "xaa_fan", reply.id: None}  # X's reply events
    assert env.conn.execute(
        "select webhook_last_event_at is not null from public.x_account"
    ).fetchone() == (True,)
    # What X billed for the deliveries is what chirpbase recorded, event for event.
    priced = env.conn.execute(
        "select units, estimated_cost_usd::float8 from public.api_usage"
        " where endpoint = 'activity_events' and month = public.current_month()"
    ).fetchone()
    # X bills each event at its type's price, on pay-per-use, under its own operation and not
    # as a Post read (docs.x.com/x-api/activity/event-pricing: mentions and replies $0.005).
    assert x.activity.events_billed == 2 and x.posts_read == 0
    assert x.billing.by_operation()["activity_event"] == pytest.approx(2 * 0.005)
    assert priced == (x.activity.events_billed, pytest.approx(x.activity.events_billed_usd))

    # The same posts polled by the worker: read, not inserted again; the poll names the
    # reply's author, which the reply event did not.
    async with running(
        Worker(env.stack.settings(env.dsn, poll_interval_s=0.2), kinds=["poll_mentions"])
    ):
        job = env.conn.execute("select public.enqueue_job('poll_mentions')").fetchone()[0]

        def finished() -> Any:
            return env.conn.execute(
                "select result from public.jobs where id = %s and status = 'succeeded'", (job,)
            ).fetchone()

        (result,) = await wait_for(finished, timeout=15, message="the poll")
    assert (result["fetched"], result["inserted"]) == (2, 0)
    assert env.replies() == pushed
    assert env.usernames() == {mention.id: "xaa_fan", reply.id: "xaa_fan"}

    # A delivery with a bad signature is refused by the function and stores nothing.
    forged = json.loads(x.activity.deliveries[0].body)
    forged["data"]["payload"]["id"] = forged["data"]["payload"]["edit_history_tweet_ids"][0] = (
        "1860000000000555555"
    )
    body = json.dumps(forged).encode()
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            env.function.url,
            content=body,
            headers={"x-twitter-webhooks-signature": sign("not-the-consumer-secret", body)},
        )
    assert refused.status_code == 403
    assert len(env.replies()) == 2

    code, out, _ = await env.cli("webhook", "status", "--json")
    status = json.loads(out)
    assert code == 0 and status["webhook"]["state"] == "ok", out
    assert status["webhook"]["valid"] is True and status["webhook"]["last_event_at"]
    assert sorted(s["event_type"] for s in status["webhook"]["subscriptions"]) == EVENTS
    assert status["costs"]["polls_per_day"] == 1440  # the default schedule: every minute
    assert status["volume"]["by_webhook_30d"] == 2
    # The prices come from the `pricing` row: an operator's edit changes the comparison.
    assert status["costs"]["prices_usd"] == {
        "activity_event": 0.005,
        "owned_read": 0.001,
        "post_read": 0.005,
    }
    env.conn.execute(
        "update public.configs set value = jsonb_set(value, '{x,activity_event}', '0.0005')"
        " where key = 'pricing'"
    )
    code, out, _ = await env.cli("webhook", "status", "--json")
    assert json.loads(out)["costs"]["prices_usd"]["activity_event"] == 0.0005


@pytest.mark.timeout(300)  # the first Deno run may fetch its npm packages
async def test_on_enterprise_access_a_pushed_event_is_not_billed_on_either_side(env: Env) -> None:
    """docs.x.com/x-api/activity/event-pricing: "Per-event billing only applies to users on the
    pay-per-use product." With X's access and chirpbase's plan both Enterprise, the stand-in
    bills nothing for the delivery and the function records it at $0."""
    x = env.stack.x
    x.access_tier = "enterprise"
    set_access_tier(env.conn, "enterprise")
    code, out, err = await env.cli("webhook", "register", "--url", URL)
    assert code == 0, (out, err)
    fan = x.add_user("xaa_enterprise_fan")
    mention = x.add_mention(fan.id, "hey @chirpbase_bot, on enterprise")
    await wait_for(lambda: len(env.replies()) == 1, timeout=10, message="the pushed mention")
    await x.activity.drain()
    assert env.replies() == [(mention.id, "webhook", fan.id)]
    assert [(d.event_type, d.outcome) for d in x.activity.deliveries] == [
        ("post.mention.create", "delivered")
    ]
    assert x.activity.events_billed == 0 and "activity_event" not in x.billing.by_operation()
    priced = env.conn.execute(
        "select coalesce(sum(estimated_cost_usd), 0)::float8 from public.api_usage"
        " where endpoint = 'activity_events' and month = public.current_month()"
    ).fetchone()
    assert priced == (x.activity.events_billed_usd,) == (0.0,)


async def test_register_twice_creates_nothing_twice_and_remove_undoes_it(env: Env) -> None:
    x = env.stack.x
    env.conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    assert (await env.cli("webhook", "register", "--url", URL))[0] == 0
    before = (set(x.activity.webhooks), set(x.activity.subscriptions))
    code, out, _ = await env.cli("webhook", "register", "--url", URL)
    assert code == 0 and "already registered: nothing to do" in out
    assert (set(x.activity.webhooks), set(x.activity.subscriptions)) == before
    assert x.request_count(WEBHOOKS_CREATE) == 1 and x.request_count(SUBSCRIPTIONS_CREATE) == 2
    assert x.request_count("GET /2/users/me") == 0  # the account id came from x_account

    code, out, _ = await env.cli("webhook", "remove")
    assert code == 0 and out.count("deleted subscription") == 2 and "deleted webhook" in out
    assert x.activity.webhooks == {} and x.activity.subscriptions == {}
    assert env.conn.execute("select webhook_id, webhook_url from public.x_account").fetchone() == (
        None,
        None,
    )
    assert env.conn.execute("select count(*) from public.x_activity_subscriptions").fetchone() == (
        0,
    )
    code, out, _ = await env.cli("webhook", "remove")
    assert code == 0 and "nothing to remove" in out
    code, _, err = await env.cli("webhook", "remove", "--webhook-id", "latest")
    assert code == 2 and "numeric" in err
    code, out, _ = await env.cli("webhook", "status")
    assert code == 0 and "not_registered" in out


async def test_an_unreachable_or_misconfigured_function_is_named_and_nothing_is_kept(
    env: Env,
) -> None:
    x = env.stack.x
    code, _, err = await env.cli(
        "webhook", "register", "--url", "https://not-deployed.supabase.co/functions/v1/x-webhook"
    )
    assert code == 1 and "CRC check" in err and "X_API_SECRET" in err, err
    assert x.activity.webhooks == {}
    assert env.conn.execute("select webhook_id from public.x_account").fetchone() == (None,)
    for bad in ("http://abc.supabase.co/functions/v1/x-webhook", f"{PUBLIC}:8443/x-webhook",
                "https://localhost/x-webhook"):  # fmt: skip
        code, _, err = await env.cli("webhook", "register", "--url", bad)
        assert code == 2 and "cannot register" in err, (bad, err)
    assert x.request_count(WEBHOOKS_CREATE) == 1  # only the unreachable one reached X
    # Without --url: SUPABASE_URL of the stack is http on a port, which X would refuse.
    code, _, err = await env.cli("webhook", "register")
    assert code == 2 and "https" in err


async def test_x_failing_half_way_leaves_a_state_the_next_run_completes(env: Env) -> None:
    x = env.stack.x
    env.conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    x.fail_next(SUBSCRIPTIONS_CREATE, 1, status=503)
    code, _, err = await env.cli("webhook", "register", "--url", URL)
    assert code == 1 and "run it again" in err, err
    assert len(x.activity.webhooks) == 1 and x.activity.subscriptions == {}
    assert env.conn.execute("select webhook_url from public.x_account").fetchone() == (URL,)
    code, out, _ = await env.cli("webhook", "register", "--url", URL)
    assert code == 0 and "registered webhook" not in out and out.count("subscribed") == 2
    assert len(x.activity.webhooks) == 1 and len(x.activity.subscriptions) == 2


async def test_an_invalid_webhook_shows_in_status_and_register_re_checks_it(env: Env) -> None:
    x = env.stack.x
    env.conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    assert (await env.cli("webhook", "register", "--url", URL))[0] == 0
    (webhook,) = x.activity.webhooks.values()
    webhook.valid = False  # X marked it invalid (its periodic CRC failed for 28 h)
    code, out, _ = await env.cli("webhook", "status")
    assert code == 1 and "invalid" in out
    assert "polling" in out and "webhook + polling" in out  # the cost comparison
    code, out, _ = await env.cli("webhook", "register", "--url", URL)
    assert code == 0 and "re-validated" in out and webhook.valid is True
    assert x.request_count(WEBHOOKS_CREATE) == 1


async def test_the_one_webhook_of_pay_per_use_is_reported_and_replace_takes_its_place(
    env: Env,
) -> None:
    x = env.stack.x
    env.conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    old = f"{PUBLIC}/functions/v1/old-webhook"
    assert (await env.cli("webhook", "register", "--url", old))[0] == 0
    env.conn.execute("update public.x_account set webhook_id = null, webhook_url = null")
    code, _, err = await env.cli("webhook", "register", "--url", URL)
    assert code == 1 and "no more webhooks" in err and old in err
    code, out, _ = await env.cli("webhook", "register", "--url", URL, "--replace")
    assert code == 0 and "deleted webhook" in out, out
    assert [w.url for w in x.activity.webhooks.values()] == [URL]
    assert {s.webhook_id for s in x.activity.subscriptions.values()} == set(x.activity.webhooks)


async def test_status_when_x_does_not_answer_still_shows_the_record_and_the_costs(
    env: Env,
) -> None:
    x = env.stack.x
    env.conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    assert (await env.cli("webhook", "register", "--url", URL))[0] == 0
    x.fail_next("GET /2/webhooks", 3, status=503)  # every attempt of the (retried) read
    code, out, _ = await env.cli("webhook", "status", "--json")
    status = json.loads(out)
    assert code == 1 and status["webhook"]["state"] == "x_unreachable"
    assert status["webhook"]["url"] == URL and status["webhook"]["valid"] is True  # recorded
    assert status["costs"]["per_month_usd"]["polling"] == 0.0  # no mention yet
    assert x.request_count("GET /2/webhooks", status=503) == 3


async def test_registering_a_new_url_retires_the_previous_webhook(env: Env) -> None:
    """Where X allows several webhooks (Enterprise), moving the URL leaves no second copy of
    the subscriptions delivering (and billing) every event again."""
    x = env.stack.x
    x.activity.webhook_limit = 5
    env.conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    assert (await env.cli("webhook", "register", "--url", f"{PUBLIC}/functions/v1/v1"))[0] == 0
    code, out, _ = await env.cli("webhook", "register", "--url", URL)
    assert code == 0 and "registered webhook" in out and "deleted webhook" in out, out
    assert [w.url for w in x.activity.webhooks.values()] == [URL]
    assert len(x.activity.subscriptions) == 2
    assert {s.webhook_id for s in x.activity.subscriptions.values()} == set(x.activity.webhooks)
