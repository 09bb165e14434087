"""X access tiers in SQL: what each tier may do, pausing a refused capability, skipped jobs,
and the scheduled_tweets door for replies and quote posts."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.helpers import claim, enqueue, job, open_alerts, scalar, set_config


def _caps(conn: psycopg.Connection, tier: str) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "select capability from public.x_capabilities where public.x_tier_allows(capability, %s)",
            (tier,),
        )
    }


def test_tiers_and_their_capabilities(shared_conn: psycopg.Connection) -> None:
    base = {"posts", "media", "reads", "summoned_replies"}
    for tier in ("pay_per_use", "basic", "pro", "free"):
        assert _caps(shared_conn, tier) == base, tier
    assert _caps(shared_conn, "enterprise") == base | {"likes", "quotes", "unsummoned_replies"}
    assert _caps(shared_conn, "no-such-tier") == set()
    assert scalar(shared_conn, "select public.x_access_tier()") == "pay_per_use"
    notice = scalar(shared_conn, "select public.x_capability_notice('likes')")
    assert "likes are not available on X access tier pay_per_use since 2026-04-20" in notice
    assert "only on enterprise" in notice
    assert scalar(shared_conn, "select public.x_capability_notice('posts')") is None


def _reply(conn: psycopg.Connection, reply_id: str, author: str = "u42") -> None:
    conn.execute(
        "insert into public.replies (reply_id, author_id, content) values (%s, %s, 'hi')",
        (reply_id, author),
    )


def _like_jobs(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select payload ->> 'reply_id' from public.jobs where kind = 'like_reply' order by id"
        )
    ]


def test_auto_like_is_off_unless_asked(shared_conn: psycopg.Connection) -> None:
    """X's guidelines forbid apps to offer auto-liking: the shipped row says false (the
    migration turned off an auto_like that a tier without likes could not use anyway)."""
    value = scalar(
        shared_conn, "select value -> 'auto_like' from public.configs where key = 'engagement'"
    )
    assert value is False


def test_no_like_job_off_enterprise_although_auto_like_is_on(conn: psycopg.Connection) -> None:
    set_config(conn, "engagement", {"auto_like": True})
    for tier in ("pay_per_use", "basic", "pro"):
        set_config(conn, "quotas", {"plan": tier})
        _reply(conn, f"r-{tier}")
    assert _like_jobs(conn) == []
    set_config(conn, "quotas", {"plan": "enterprise"})
    _reply(conn, "r-enterprise")
    assert _like_jobs(conn) == ["r-enterprise"]


def test_a_refused_capability_is_paused_once_and_lifted_by_a_new_tier(
    conn: psycopg.Connection,
) -> None:
    set_config(conn, "quotas", {"plan": "enterprise"})
    set_config(conn, "engagement", {"auto_like": True})
    assert scalar(conn, "select public.pause_x_capability('likes', 'client-not-enrolled')") is True
    assert scalar(conn, "select public.pause_x_capability('likes', 'again')") is False
    (alert,) = open_alerts(conn, "x_capability_refused")
    assert alert["occurrences"] == 1 and alert["level"] == "critical"
    message = alert["message"]
    assert "X refused likes on access tier enterprise" in message
    assert "on 2026-04-20" in message and "skipped, not retried" in message
    assert alert["details"]["capability"] == "likes"
    assert scalar(conn, "select public.x_capability_available('likes')") is False
    assert "X refused likes" in scalar(conn, "select public.x_capability_notice('likes')")
    _reply(conn, "r1")
    assert _like_jobs(conn) == []  # paused: no like job is made

    # Another change to quotas keeps the pause; a change of tier lifts it and resolves the alert.
    set_config(conn, "quotas", {"alert_threshold": 0.9})
    assert scalar(conn, "select count(*) from public.x_capability_pauses") == 1
    set_config(conn, "quotas", {"plan": "pay_per_use"})
    assert scalar(conn, "select count(*) from public.x_capability_pauses") == 0
    assert open_alerts(conn, "x_capability_refused") == []
    resolution = scalar(
        conn,
        "select details ->> 'resolution' from public.alerts where kind = 'x_capability_refused'",
    )
    assert resolution == "access tier changed from enterprise to pay_per_use"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown X capability"):
        conn.execute("select public.pause_x_capability('follows')")


def test_a_skipped_job_is_finished_not_failed(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, "noop")
    (claimed,) = claim(conn)
    token = claimed["lease_token"]
    assert (
        scalar(conn, "select public.skip_job(%s, 'other-worker', %s, 'no')", (job_id, token))
        is False
    )
    # A stale claim's token skips nothing (fencing: only the current claim ends the job).
    assert (
        scalar(
            conn,
            "select public.skip_job(%s, 'w1', nextval('public.jobs_lease_token_seq'), 'no')",
            (job_id,),
        )
        is False
    )
    assert (
        scalar(
            conn,
            "select public.skip_job(%s, 'w1', %s, 'likes are Enterprise-only', '{\"capability\": \"likes\"}')",
            (job_id, token),
        )
        is True
    )
    row = job(conn, job_id)
    assert row["status"] == "skipped" and row["finished_at"] is not None
    assert row["result"] == {"capability": "likes", "skipped": "likes are Enterprise-only"}
    assert row["locked_by"] is None and row["last_error"] is None and row["lease_token"] is None
    # Not a failure: nothing in job_failures, no dead-job alert.
    assert scalar(conn, "select count(*) from public.job_failures") == 0
    conn.execute("select * from public.evaluate_alerts(1)")
    assert open_alerts(conn) == []
    assert scalar(conn, "select count(*) from public.queue_depth where status = 'skipped'") == 1
    # Retried on demand (after a tier change, say), pruned like any finished job.
    assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
    assert job(conn, job_id)["status"] == "queued"
    (claimed,) = claim(conn)
    conn.execute("select public.skip_job(%s, 'w1', %s, 'again')", (job_id, claimed["lease_token"]))
    conn.execute(
        "update public.jobs set finished_at = now() - interval '8 days' where id = %s", (job_id,)
    )
    assert scalar(conn, "select public.prune_finished_jobs()") == 1


def _schedule(conn: psycopg.Connection, **cols: Any) -> dict[str, Any]:
    names = ", ".join(cols)
    values = ", ".join(f"%({c})s" for c in cols)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"insert into public.scheduled_tweets ({names}) values ({values}) returning *", cols
        )
        row = cur.fetchone()
    assert row is not None
    return row


def test_the_door_refuses_what_the_tier_does_not_allow(conn: psycopg.Connection) -> None:
    conn.execute("insert into public.tweets (tweet_id, content) values ('500', 'our own post')")
    _reply(conn, "600")  # a post that mentioned the account
    with pytest.raises(psycopg.errors.CheckViolation, match="quote posts are not available"):
        _schedule(conn, content="quoting", quote_tweet_id="700")
    with pytest.raises(
        psycopg.errors.CheckViolation, match="only to a post that summoned the account"
    ) as refused:
        _schedule(conn, content="unsolicited", in_reply_to_tweet_id="700")
    assert "replies table" in (refused.value.diag.message_hint or "")
    with pytest.raises(psycopg.errors.CheckViolation, match="must be a post id"):
        _schedule(conn, content="bad id", in_reply_to_tweet_id="abc")
    assert scalar(conn, "select count(*) from public.jobs") == 0  # nothing half-made

    summoned = _schedule(conn, content="thanks!", in_reply_to_tweet_id="600")
    thread = _schedule(conn, content="and another thing", in_reply_to_tweet_id=" 500 ")
    assert thread["in_reply_to_tweet_id"] == "500"
    assert {summoned["status"], thread["status"]} == {"pending"}
    # Changing the target to one that did not summon the account is refused as well.
    with pytest.raises(psycopg.errors.CheckViolation, match="summoned"):
        conn.execute(
            "update public.scheduled_tweets set in_reply_to_tweet_id = '701' where id = %s",
            (summoned["id"],),
        )

    set_config(conn, "quotas", {"plan": "enterprise"})
    assert _schedule(conn, content="anything goes", in_reply_to_tweet_id="700")["status"]
    assert _schedule(conn, content="a quote", quote_tweet_id="700")["quote_tweet_id"] == "700"


def test_scheduling_a_post_with_a_url_says_what_x_bills(conn: psycopg.Connection) -> None:
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    _schedule(conn, content="no link here")
    assert notices == []
    _schedule(conn, content="read https://example.com/post")
    _schedule(conn, content="docs at example.com today")
    assert len(notices) == 2
    assert "contains a URL, which X bills at $0.20" in notices[0]
    assert "instead of $0.015" in notices[0]
    conn.execute(
        "update public.configs set value = jsonb_set(value, '{x,post_with_url}', '0.25')"
        " where key = 'pricing'"
    )
    _schedule(conn, content="http://chirpbase.dev")
    assert "$0.25" in notices[-1]
