"""Polls on the X stand-in, through tweepy's own ``create_tweet(poll_options=...,
poll_duration_minutes=...)`` and ``get_tweets(expansions=..., poll_fields=...)``: X's schema
refusals in X's 400 shape, and results that move while the poll is open and stop when it
closes (sandbox/x_api/polls.py cites the rules)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import tweepy
from aiohttp import web

from sandbox.x_api import XState, create_app
from tests.sandbox.test_x_api_rules import API, Server, call

FIELDS = ["duration_minutes", "end_datetime", "id", "options", "voting_status"]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = XState()
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield Server(state, f"http://127.0.0.1:{runner.addresses[0][1]}")
    await runner.cleanup()


async def _post(server: Server, **kwargs: Any) -> dict[str, Any]:
    return await call(server.tweepy().create_tweet, user_auth=True, **kwargs)


async def _refused(server: Server, **kwargs: Any) -> str:
    with pytest.raises(tweepy.BadRequest) as exc:
        await _post(server, **kwargs)
    assert exc.value.response.status_code == 400
    body = exc.value.response.json()
    assert body["title"] == "Invalid Request"
    assert body["type"].endswith("/2/problems/invalid-request")
    assert server.state.posted_tweets() == []  # nothing was created
    return str(body["errors"][0]["message"])


@pytest.mark.parametrize(
    ("options", "minutes", "message"),
    [
        (["only"], 60, "$.poll.options: there must be a minimum of 2 items in the array"),
        (["a", "b", "c", "d", "e"], 60, "$.poll.options: there must be a maximum of 4 items"),
        (["ok", "x" * 26], 60, "$.poll.options[1]: may only be 25 characters long"),
        (["ok", ""], 60, "$.poll.options[1]: must be at least 1 characters long"),
        (["a", "b"], 4, "$.poll.duration_minutes: must have a minimum value of 5"),
        (["a", "b"], 10081, "$.poll.duration_minutes: must have a maximum value of 10080"),
    ],
)
async def test_malformed_polls_get_x_s_400(
    server: Server,
    options: list[str],
    minutes: int,
    message: str,
) -> None:
    got = await _refused(server, text="Which?", poll_options=options, poll_duration_minutes=minutes)
    assert got.startswith(message)


async def test_bounds_are_accepted_and_count_characters_not_weight(server: Server) -> None:
    """25 emoji is 25 characters (JSON Schema's maxLength), though twitter-text weighs it 50."""
    posted = await _post(
        server, text="Bounds", poll_options=["😀" * 25, "b"], poll_duration_minutes=10080
    )
    assert server.state.polls.get(posted["data"]["id"]) is not None
    posted = await _post(server, text="Short", poll_options=list("abcd"), poll_duration_minutes=5)
    assert server.state.polls.get(posted["data"]["id"]) is not None


async def test_poll_and_media_or_quote_are_mutually_exclusive(server: Server) -> None:
    session, auth = server.session()
    for extra in ({"media": {"media_ids": ["1"]}}, {"quote_tweet_id": "123"}):
        body = {"text": "Both?", "poll": {"options": ["a", "b"], "duration_minutes": 60}, **extra}
        answer = await call(session.post, f"{API}/2/tweets", json=body, auth=auth)
        assert answer.status_code == 400, answer.text
        assert "mutually exclusive" in answer.json()["errors"][0]["message"]
    answer = await call(
        session.post,
        f"{API}/2/tweets",
        json={"text": "x", "poll": {"options": ["a", "b"], "duration_minutes": 60, "multi": 1}},
        auth=auth,
    )
    assert answer.status_code == 400
    assert "additional properties" in answer.json()["errors"][0]["message"]
    assert server.state.posted_tweets() == []


async def test_results_move_while_open_and_freeze_when_closed(server: Server) -> None:
    state = server.state
    posted = await _post(
        server, text="Tabs or spaces?", poll_options=["tabs", "spaces"], poll_duration_minutes=60
    )
    tweet_id = posted["data"]["id"]
    client = server.tweepy()

    async def read() -> dict[str, Any]:
        body = await call(
            client.get_tweets,
            [tweet_id],
            expansions=["attachments.poll_ids"],
            poll_fields=FIELDS,
            user_auth=True,
        )
        poll_id = body["data"][0]["attachments"]["poll_ids"][0]
        (poll,) = body["includes"]["polls"]
        assert poll["id"] == poll_id
        return dict(poll)

    first = await read()
    assert [o["label"] for o in first["options"]] == ["tabs", "spaces"]
    assert [o["position"] for o in first["options"]] == [1, 2]
    assert first["voting_status"] == "open"
    assert first["duration_minutes"] == 60
    assert first["end_datetime"].endswith("Z")

    state.advance_time(20 * 60)
    state.polls.vote(tweet_id, 2, 7)
    later = await read()
    before = sum(o["votes"] for o in first["options"])
    after = sum(o["votes"] for o in later["options"])
    assert after >= before + 7 + 100  # 20 minutes at 30 votes a minute, plus the 7 cast
    assert later["voting_status"] == "open"

    state.advance_time(60 * 60)  # past the end
    closed = await read()
    state.advance_time(60 * 60)
    state.polls.vote(tweet_id, 1, 5)  # too late: ignored
    still = await read()
    assert closed["voting_status"] == "closed"
    assert closed["options"] == still["options"]
    assert sum(o["votes"] for o in closed["options"]) > after


async def test_a_post_without_the_expansion_shows_no_poll(server: Server) -> None:
    posted = await _post(server, text="Q", poll_options=["a", "b"], poll_duration_minutes=60)
    body = await call(server.tweepy().get_tweets, [posted["data"]["id"]], user_auth=True)
    assert "attachments" not in body["data"][0]
    assert "includes" not in body
