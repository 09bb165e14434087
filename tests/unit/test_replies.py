"""The Python side of the shared reply vectors (tests/fixtures/reply_vectors.json).

Each vector's v2 response is read with XClient's own parser (`parse_tweets`, what `mentions()`
uses) and mapped with `worker.conversation.mentions.mention_to_reply_row`, the function `poll_mentions` uses;
the row must equal `expected` (None: dropped for the reason in `skip`). The Deno tests check the
same vectors against supabase/functions/_shared/replies.ts, so polling and the webhook agree.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from worker.clients.x import XTweet, parse_tweets
from worker.conversation.mentions import (
    iso_millis,
    mention_to_reply_row,
    reply_rows_from_activity,
    skip_reason,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "reply_vectors.json").read_text()
)
BOT = VECTORS["bot"]["user_id"]
FIELDS = VECTORS["row_fields"]


def _one(body: dict[str, Any]) -> XTweet:
    tweets, _users = parse_tweets(body)
    assert len(tweets) == 1
    return tweets[0]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_maps_to_expected_row(vector: dict[str, Any]) -> None:
    tweet = _one(vector["v2"])
    row = mention_to_reply_row(tweet, bot_user_id=BOT, source="poll")
    expected = vector["expected"]
    if expected is None:
        assert row is None
        assert skip_reason(tweet, bot_user_id=BOT) == vector["skip"]
        return
    assert row is not None
    assert row["source"] == "poll"
    assert {k: row[k] for k in FIELDS} == {k: expected[k] for k in FIELDS}
    assert set(row) == {*FIELDS, "source"}


@pytest.mark.parametrize("case", VECTORS["xaa"], ids=lambda c: c["name"])
def test_xaa_delivery_maps_to_expected_rows(case: dict[str, Any]) -> None:
    """The same X Activity API deliveries the edge function is checked against (replies.ts
    `repliesFromActivity`): the same rows, the same posts dropped, the same events ignored."""
    result = reply_rows_from_activity(case["delivery"], bot_user_id=BOT)
    assert [{k: r[k] for k in FIELDS} for r in result.rows] == case["expected"]
    assert all(r["source"] == "webhook" for r in result.rows)
    assert result.skipped == case["skipped"]
    assert result.ignored == case.get("ignored", [])


def test_xaa_mapping_is_total() -> None:
    junk: list[Any] = [
        None,
        [],
        {"data": None},
        {"data": [None, 1, {"event_type": 5}]},
        {"data": {"event_type": "post.mention.create"}},
        {"data": {"event_type": "post.reply.create", "payload": {"id": "1"}, "includes": 3}},
        {
            "data": {
                "event_type": "post.reply.create",
                "payload": {"id": "1", "author_id": "2"},
                "includes": {"users": [None, {"data": 3}]},
            }
        },
    ]
    for body in junk:
        assert reply_rows_from_activity(body, bot_user_id=BOT).rows == []
    assert reply_rows_from_activity(junk[3], bot_user_id=BOT).ignored == ["not_an_event"] * 3


def test_vectors_cover_every_rule() -> None:
    """The fixture keeps exercising what the Python mapping decides (a guard on the fixture)."""
    skips = {v.get("skip") for v in VECTORS["vectors"] if v["expected"] is None}
    assert {"own_post", "retweet", "not_for_bot"} <= skips
    assert any("note_tweet" in v["v2"]["data"] for v in VECTORS["vectors"])
    assert any(
        v["expected"] and v["expected"]["original_tweet_id"] is None for v in VECTORS["vectors"]
    )


def test_parse_tweets_accepts_a_timeline_and_tolerates_junk() -> None:
    body = {
        "data": [
            {"id": "1860000000000000201", "text": "a", "author_id": "7", "created_at": "bad"},
            "not an object",
            {"text": "no id"},
            {"id": "1860000000000000202", "text": "b", "referenced_tweets": "nope"},
        ],
        "includes": {"users": [{"id": "7", "username": "seven"}, {"username": "no id"}]},
        "meta": {"result_count": 2},
    }
    tweets, users = parse_tweets(body)
    assert [t.id for t in tweets] == ["1860000000000000201", "1860000000000000202"]
    assert tweets[0].created_at is None and tweets[0].author_username == "seven"
    assert tweets[1].referenced_tweets == ()
    assert list(users) == ["7"]
    assert parse_tweets({"meta": {"result_count": 0}}) == ([], {})
    assert parse_tweets(None) == ([], {})


def test_long_post_uses_note_text_but_keeps_x_text() -> None:
    vector = next(v for v in VECTORS["vectors"] if "note_tweet" in v["v2"]["data"])
    tweet = _one(vector["v2"])
    assert tweet.text == vector["v2"]["data"]["text"]  # what X shows, truncated
    assert tweet.note_text == vector["expected"]["content"]
    # Without the note, the truncated text is what there is.
    row = mention_to_reply_row(replace(tweet, note_text=None), bot_user_id=BOT, source="poll")
    assert row is not None and row["content"] == tweet.text


def test_mention_only_in_the_note_counts() -> None:
    tweet = XTweet(
        id="1860000000000000300",
        text="long post…",
        author_id="1700000000000000002",
        note_text="long post ... @chirpbase_bot",
        mentioned_user_ids=(BOT,),
    )
    assert mention_to_reply_row(tweet, bot_user_id=BOT, source="poll") is not None
    assert skip_reason(replace(tweet, mentioned_user_ids=()), bot_user_id=BOT) == "not_for_bot"


def test_iso_millis_matches_javascript() -> None:
    assert iso_millis(datetime(2026, 11, 20, 10, 15, 30, 123999, tzinfo=UTC)) == (
        "2026-11-20T10:15:30.123Z"
    )
    assert iso_millis(None) is None
    assert iso_millis(datetime(1999, 1, 1, tzinfo=UTC)) is None
