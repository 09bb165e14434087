"""The edge functions' Deno tests, run by pytest so `make test` covers them.

`scripts/deno.sh` installs Deno from the npm registry into .local/ on first use; the npm packages
the functions import are cached in .local/deno/cache, so later runs are offline. The deno suite
gets a fresh migrated database in CHIRPBASE_TEST_DB_URL, so its Postgres tests run too (none may
be skipped here). Two more serve the function itself with `deno run`: a signed delivery becomes a
`replies` row and a like job, and an X Activity API event is priced into the spend once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.webhook_server import serve_x_webhook, sign
from tests.xaccess import enable_likes, set_access_tier

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "supabase" / "functions"
VECTORS = ROOT / "tests" / "fixtures" / "reply_vectors.json"
DENO = ["bash", str(ROOT / "scripts" / "deno.sh")]
SECRET = "e2e-consumer-secret-not-a-real-one"


def _deno_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHIRPBASE_TEST_")}
    env.update(extra)
    return env


@pytest.mark.timeout(600)
def test_deno_suite(dsn: str) -> None:
    """Every deno test under supabase/functions passes, the Postgres ones included."""
    proc = subprocess.run(
        [
            *DENO,
            "test",
            "--config",
            str(FUNCTIONS / "deno.json"),
            "--allow-env",
            "--allow-read",
            "--allow-net=127.0.0.1,localhost",
            str(FUNCTIONS),
        ],
        cwd=ROOT,
        env=_deno_env(CHIRPBASE_TEST_DB_URL=dsn),
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    summary = re.search(
        r"ok \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?", output
    )
    assert summary, output[-3000:]
    passed, failed, ignored = int(summary[1]), int(summary[3]), int(summary[4] or 0)
    assert failed == 0
    assert ignored == 0, "the Postgres tests must run here, not be skipped"
    assert passed >= 50, output[-3000:]
    assert "postgres: rows land in public.replies" in output


def test_crc_known_answer_matches_python() -> None:
    """The known CRC answer pinned in index_test.ts, computed independently here."""
    secret = b"z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"
    token = b"9b4507b3-9040-4669-9ca3-6b94edb50553"
    answer = base64.b64encode(hmac.new(secret, token, hashlib.sha256).digest()).decode()
    source = (FUNCTIONS / "x-webhook" / "index_test.ts").read_text()
    assert f"sha256={answer}" in source


@pytest.fixture
def served_function(dsn: str) -> Iterator[str]:
    """`deno run supabase/functions/x-webhook/index.ts` on a free loopback port."""
    with serve_x_webhook(secret=SECRET, db_url=dsn) as served:
        yield served.url
    assert SECRET not in served.output, "the consumer secret was logged"


def _request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object]]:
    if body is None:
        resp = httpx.get(url, timeout=10)
    else:
        resp = httpx.post(url, content=body, headers=headers or {}, timeout=10)
    return resp.status_code, resp.json()


def test_served_function_turns_a_signed_delivery_into_a_reply_and_a_like_job(
    served_function: str, dsn: str
) -> None:
    vectors = json.loads(VECTORS.read_text())
    bot = vectors["bot"]["user_id"]
    mention = next(v for v in vectors["vectors"] if v["name"] == "plain_mention")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("update public.x_account set user_id = %s where id = 1", (bot,))
        set_access_tier(conn, "enterprise")  # likes exist only on Enterprise access...
        enable_likes(conn)  # ... and only when asked for

        status, crc = _request(f"{served_function}/?crc_token=abc123")
        assert status == 200
        assert crc == {"response_token": sign(SECRET, b"abc123")}

        body = json.dumps({"for_user_id": bot, "tweet_create_events": [mention["v1"]]}).encode()
        status, _ = _request(
            served_function, body, {"x-twitter-webhooks-signature": sign("wrong", body)}
        )
        assert status == 403
        assert conn.execute("select count(*) from public.replies").fetchone() == (0,)

        started = time.perf_counter()
        status, result = _request(
            served_function,
            body,
            {
                "x-twitter-webhooks-signature": sign(SECRET, body),
                "content-type": "application/json",
            },
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        assert (status, result) == (200, {"ok": True, "inserted": 1, "duplicates": 0, "skipped": 0})

        row = conn.execute(
            "select reply_id, original_tweet_id, author_id, author_username, content, created_at,"
            " conversation_id, source from public.replies"
        ).fetchone()
        expected = mention["expected"]
        assert row is not None
        assert row[:5] == (
            expected["reply_id"],
            expected["original_tweet_id"],
            expected["author_id"],
            expected["author_username"],
            expected["content"],
        )
        assert row[5].isoformat().replace("+00:00", ".000Z") == expected["created_at"]
        assert row[6:] == (expected["conversation_id"], "webhook")
        job = conn.execute(
            "select kind, status from public.jobs where dedupe_key = %s",
            (f"like_reply:{expected['reply_id']}",),
        ).fetchone()
        assert job == ("like_reply", "queued")
        assert conn.execute(
            "select webhook_last_event_at is not null from public.x_account"
        ).fetchone() == (True,)

        status, again = _request(
            served_function, body, {"x-twitter-webhooks-signature": sign(SECRET, body)}
        )
        assert (status, again["inserted"], again["duplicates"]) == (200, 0, 1)
        assert conn.execute("select count(*) from public.replies").fetchone() == (1,)
        print(f"signed delivery → replies row + like job in {elapsed_ms:.1f} ms")
        assert elapsed_ms < 2000


def test_served_function_prices_each_activity_event_once_into_the_spend_figures(
    served_function: str, dsn: str
) -> None:
    """X bills an X Activity API event per event delivered, once per event even when it is
    delivered again (docs.x.com/x-api/activity/event-pricing; x-api/getting-started/pricing.mdx
    "Webhook events"). The served function records it where status, /health, the report and the
    budget read spend; a post.delete, which X does not bill, records nothing."""
    from worker.ops.operator import Operator

    vectors = json.loads(VECTORS.read_text())
    cases = {c["name"]: c["delivery"] for c in vectors["xaa"]}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "update public.x_account set user_id = %s where id = 1", (vectors["bot"]["user_id"],)
        )

        def deliver(name: str) -> None:
            body = json.dumps(cases[name]).encode()
            status, _ = _request(
                served_function, body, {"x-twitter-webhooks-signature": sign(SECRET, body)}
            )
            assert status == 200

        for _ in range(2):  # X may deliver an event more than once
            deliver("mention_create")
        deliver("post_delete")
        usage = conn.execute(
            "select endpoint, operation, calls, units, estimated_cost_usd::float8, reads"
            " from public.api_usage where month = public.current_month()"
        ).fetchall()
        assert usage == [("activity_events", "activity_event", 2, 1, 0.005, 0)]
        with Operator.connect(dsn) as op:
            budget = op.status_snapshot()["budget"]
        assert (budget["x_usd"], budget["spent_usd"]) == (0.005, 0.005)
        held = conn.execute(
            "select used::float8 from public.quota_usage"
            " where month = public.current_month() and resource = 'spend_usd'"
        ).fetchone()
        assert held == (0.005,)  # the budget's hard stop counts it too
