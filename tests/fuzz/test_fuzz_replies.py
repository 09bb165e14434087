"""Fuzz reply ingestion by polling: any text X can put in a post's JSON lands in `replies`.

JSON can carry what Postgres text cannot: NUL (`\\u0000`) and lone surrogates (`\\ud800`). One
such mention used to fail `poll_mentions`' insert every time, so mention ingestion stopped for
good (the webhook had the same fault: a 503 and X redelivering forever). Every example builds a
mention from the shared vectors with hostile text and username, parses it with XClient's own
parser, maps it with `mention_to_reply_row` and inserts it with the worker's `insert_replies`
query, in a transaction rolled back afterwards.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import example, given
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import EDGE_PIECES
from worker.clients.x import parse_tweets
from worker.conversation.mentions import mention_to_reply_row
from worker.db import query

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "reply_vectors.json").read_text()
)
BOT = VECTORS["bot"]["user_id"]
MENTION = next(v for v in VECTORS["vectors"] if v["name"] == "plain_mention")

any_char = st.one_of(
    st.characters(codec="utf-8"),
    st.integers(0xD800, 0xDFFF).map(chr),  # lone surrogates: json.loads makes them from \\udXXX
    st.just("\x00"),
)
hostile = st.one_of(
    st.text(any_char, max_size=60),
    st.lists(
        st.sampled_from([*EDGE_PIECES, "\x00", "\ud800", "\udfff", "\ud83d"]), max_size=10
    ).map("".join),
)


def _expected(text: str) -> str:
    """What JavaScript's `toWellFormed().replaceAll("\\u0000", "")` gives (the webhook's rule)."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text).replace("\x00", "")


def _body(text: str, username: str) -> dict[str, Any]:
    body = copy.deepcopy(MENTION["v2"])
    body["data"]["text"] = text
    body["data"].pop("note_tweet", None)
    for user in body.get("includes", {}).get("users", []):
        user["username"] = username
    return body


def test_fuzz_mention_text_is_always_storable(fuzz_conn: psycopg.Connection) -> None:
    stored = 0

    @FUZZ
    @given(text=hostile, username=hostile)
    @example(text="a\x00b \ud800 c", username="nul\x00name")
    @example(text="\U0001f600 pair stays", username="x")
    def insert(text: str, username: str) -> None:
        nonlocal stored
        # Through real JSON, as the API response arrives (json.dumps escapes both cases).
        body = json.loads(json.dumps(_body(text, username)))
        tweets, _users = parse_tweets(body)
        row = mention_to_reply_row(tweets[0], bot_user_id=BOT, source="poll")
        assert row is not None
        with fuzz_conn.transaction(force_rollback=True):
            inserted = fuzz_conn.execute(query("insert_replies"), {"rows": Jsonb([row])}).fetchall()
            assert inserted == [(row["reply_id"],)]
            got = fuzz_conn.execute(
                "select content, author_username from public.replies where reply_id = %s",
                (row["reply_id"],),
            ).fetchone()
        assert got is not None
        # (after the JSON round trip: adjacent surrogates there pair up into one character)
        sent_text = body["data"]["text"]
        sent_usernames = [u["username"] for u in body.get("includes", {}).get("users", [])]
        assert got[0] == _expected(sent_text)
        assert got[1] is None or got[1] in [_expected(u) for u in sent_usernames]
        stored += 1

    insert()
    assert stored >= 500
