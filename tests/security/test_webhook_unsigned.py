"""The x-webhook function, served for real, refuses everything not signed with the X secret.

The Deno tests (supabase/functions/x-webhook/index_test.ts) cover the handler in depth and fuzz
it; this is the check from outside, over HTTP against `deno run`: a valid reply delivery that is
unsigned, signed with the wrong secret, signed for other bytes, or with a malformed signature
header stores nothing and queues nothing, and neither the secret nor the database password ever
shows up in a response or in the function's output.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests import pg
from tests.webhook_server import serve_x_webhook, sign

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "supabase" / "functions"
VECTORS = json.loads((ROOT / "tests" / "fixtures" / "reply_vectors.json").read_text())
SECRET = "webhook-secret-" + secrets.token_hex(12)
DB_PASSWORD = "webhook-db-" + secrets.token_hex(12)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def webhook(db_name: str) -> Iterator[str]:
    db_url = f"postgresql://postgres:{DB_PASSWORD}@{pg.HOST}:{pg.PORT}/{db_name}"
    with serve_x_webhook(secret=SECRET, db_url=db_url) as served:
        yield served.url
    # Its own output (startup, refusals, errors): no secret in it.
    out = served.output
    assert out and SECRET not in out and DB_PASSWORD not in out, out[-2000:]


def test_unsigned_and_missigned_deliveries_store_nothing(
    webhook: str, conn: psycopg.Connection
) -> None:
    url = webhook
    bot = VECTORS["bot"]["user_id"]
    mention = next(v for v in VECTORS["vectors"] if v["name"] == "plain_mention")
    conn.execute("update public.x_account set user_id = %s where id = 1", (bot,))
    body = json.dumps({"for_user_id": bot, "tweet_create_events": [mention["v1"]]}).encode()
    good = sign(SECRET, body)
    attempts: dict[str, tuple[dict[str, str], set[int]]] = {
        "no signature": ({}, {401}),
        "empty signature": ({"x-twitter-webhooks-signature": ""}, {401}),
        "other secret": ({"x-twitter-webhooks-signature": sign(SECRET + "x", body)}, {403}),
        "other body": ({"x-twitter-webhooks-signature": sign(SECRET, body + b" ")}, {403}),
        "sha1 prefix": ({"x-twitter-webhooks-signature": good.replace("sha256=", "sha1=")}, {401}),
        "no prefix": ({"x-twitter-webhooks-signature": good.removeprefix("sha256=")}, {401}),
        "truncated": ({"x-twitter-webhooks-signature": good[:-4]}, {401, 403}),
        "other header": ({"x-hub-signature-256": good}, {401}),
    }
    seen = []
    with httpx.Client(timeout=10) as http:
        for name, (headers, statuses) in attempts.items():
            response = http.post(
                url, content=body, headers={"content-type": "application/json", **headers}
            )
            assert response.status_code in statuses, (name, response.status_code, response.text)
            seen.append(response.text)
        assert conn.execute("select count(*) from public.replies").fetchone() == (0,)
        assert conn.execute("select count(*) from public.jobs").fetchone() == (0,)

        # The control: the same bytes, signed with the secret, are taken.
        accepted = http.post(url, content=body, headers={"x-twitter-webhooks-signature": good})
        assert accepted.status_code == 200 and accepted.json()["inserted"] == 1
        seen.append(accepted.text)
    assert conn.execute("select count(*) from public.replies").fetchone() == (1,)
    assert not any(SECRET in t or DB_PASSWORD in t for t in seen)
