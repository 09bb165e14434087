"""Reply drafts in SQL: the replies trigger and its guards, opt-outs, one draft per post and per
conversation turn, the daily caps, approval into a post, rejection, edits, expiry, the post's
outcome mirrored, and the `conversation` config door.

The worker's own guards (worker/conversation/policy.py) are checked against SQL's
`reply_draft_refusal` case by case at the end: both must say the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.sql.helpers import scalar
from worker.config.models import Conversation
from worker.conversation.policy import ReplyFacts, refusal
from worker.db import query

BOT = "1600000000000000001"


def rows(conn: psycopg.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, params or None).fetchall()  # type: ignore[arg-type]


def configure(conn: psycopg.Connection, **values: Any) -> None:
    conn.execute(
        "update public.configs set value = value || %s where key = 'conversation'",
        (Jsonb(values),),
    )


@pytest.fixture
def on(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("update public.x_account set user_id = %s where id = 1", (BOT,))
    configure(conn, enabled=True)
    return conn


def post(
    conn: psycopg.Connection,
    reply_id: str,
    author: str = "700",
    content: str = "@chirpbase_bot hello",
    *,
    username: str | None = "alice",
    mentions: bool | None = True,
    conversation: str | None = None,
    lang: str | None = "en",
    quoted: str | None = None,
    created_at: datetime | None = None,
) -> None:
    conn.execute(
        "insert into public.replies (reply_id, author_id, author_username, content,"
        " mentions_account, conversation_id, lang, quoted_tweet_id, created_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
        (reply_id, author, username, content, mentions, conversation, lang, quoted, created_at),
    )


def draft_jobs(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select payload ->> 'reply_id' from public.jobs where kind = 'draft_reply' order by id"
        )
    ]


def record(conn: psycopg.Connection, reply_id: str, text: str = "thanks!") -> dict[str, Any]:
    (row,) = rows(
        conn,
        "select * from public.record_reply_draft(%s, %s, '{}'::jsonb, 1, null)",
        reply_id,
        text,
    )
    return row


# -- the trigger ----------------------------------------------------------------------------------


def test_off_by_default_and_nothing_is_queued(conn: psycopg.Connection) -> None:
    value = scalar(conn, "select value from public.configs where key = 'conversation'")
    assert value["enabled"] is False and value["approval"] == "required"
    assert Conversation.model_validate(value) == Conversation()  # the row and the model agree
    post(conn, "10")
    assert draft_jobs(conn) == []
    assert "off" in scalar(conn, "select public.reply_draft_refusal('10')")


def test_a_summoning_post_gets_one_job_and_the_others_none(on: psycopg.Connection) -> None:
    configure(on, skip_authors=["@Spammy", "999"], languages=["en", "fr"])
    on.execute("insert into public.tweets (tweet_id, content) values ('500', 'ours')")
    post(on, "10")  # a mention
    post(on, "11", author=BOT, username="chirpbase_bot")  # the account itself
    post(on, "12", author="701", username="spammy")  # skipped by username, any case
    post(on, "13", author="999", username=None)  # skipped by id
    post(on, "14", mentions=False)  # replied to the account, left its handle out: no summons
    post(on, "15", mentions=False, quoted="500")  # quoted the account's post: a summons
    post(on, "16", mentions=False, quoted="501")  # quoted someone else's post
    post(on, "17", lang="de")  # not a language to answer
    post(on, "18", lang="und")  # X could not tell: answered
    post(on, "19", mentions=None)  # ingested before mentions were recorded: as a mention
    assert draft_jobs(on) == ["10", "15", "18", "19"]
    assert scalar(on, "select dedupe_key from public.jobs where kind = 'draft_reply' limit 1") == (
        "draft_reply:10"
    )
    why = {
        r: scalar(on, "select public.reply_draft_refusal(%s)", (r,))
        for r in ("11", "12", "13", "14", "16", "17")
    }
    assert why["11"] == "the account's own post"
    assert why["12"] == why["13"] == "the author is in configs.conversation.skip_authors"
    assert why["14"].startswith("the post did not summon the account") and why["16"] == why["14"]
    assert why["17"] == 'the post is in "de", not in configs.conversation.languages'
    # The summons the scheduled_tweets door and post_tweet read follow the same rule.
    assert scalar(on, "select public.x_summoned_by('14')") is False
    assert scalar(on, "select public.x_summoned_by('15')") is True
    assert scalar(on, "select public.x_summoned_by('500')") is True  # the account's own post
    with pytest.raises(psycopg.errors.CheckViolation, match="summoned the account"):
        on.execute(
            "insert into public.scheduled_tweets (content, in_reply_to_tweet_id) values ('x', '14')"
        )


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("@chirpbase_bot STOP", "stop"),
        ("please stop.", "stop"),
        ("Stop!!! enough", "stop"),
        ("@chirpbase_bot unsubscribe me", "unsubscribe"),
        ("@chirpbase_bot leave   me\nalone", "leave me alone"),
        ("c'est assez, arrête (ok?)", "arrête (ok?)"),
        ("@stopwatch_fan nice timer", None),  # a handle, not a word
        ("unstoppable queues", None),
        ("stopped by to say hi", None),
        ("@chirpbase_bot how do I stop a runaway query?", "stop"),  # by design: the word is there
    ],
)
def test_opt_out_phrases(shared_conn: psycopg.Connection, content: str, phrase: str | None) -> None:
    with shared_conn.transaction(force_rollback=True):
        configure(shared_conn, opt_out_phrases=["leave me alone", "arrête (ok?)", " "])
        assert scalar(shared_conn, "select public.reply_opt_out_phrase(%s)", (content,)) == phrase


def test_an_opt_out_is_recorded_whatever_the_setting_and_outlives_it(
    conn: psycopg.Connection,
) -> None:
    conn.execute("update public.x_account set user_id = %s where id = 1", (BOT,))
    post(conn, "20", content="@chirpbase_bot stop")  # drafts are off: the opt-out still counts
    (opt_out,) = rows(conn, "select * from public.reply_opt_outs")
    assert (opt_out["author_id"], opt_out["reply_id"], opt_out["phrase"]) == ("700", "20", "stop")
    configure(conn, enabled=True)
    post(conn, "21", content="@chirpbase_bot ok, a real question now")
    post(conn, "22", author="701", content="@chirpbase_bot a real question")
    assert draft_jobs(conn) == ["22"]
    assert (
        scalar(conn, "select public.reply_draft_refusal('21')") == "the author opted out of replies"
    )
    # The account's own "stop" is no opt-out of anyone.
    post(conn, "23", author=BOT, content="we will stop the maintenance at noon")
    assert [r["author_id"] for r in rows(conn, "select author_id from public.reply_opt_outs")] == [
        "700"
    ]


def test_an_opt_out_cancels_open_drafts_and_unposted_replies(on: psycopg.Connection) -> None:
    post(on, "30", conversation="1")
    post(on, "31", conversation="2")
    first, second = record(on, "30"), record(on, "31")
    on.execute(
        "update public.reply_drafts set status = 'approved' where id = %s", (second["draft_id"],)
    )
    scheduled = scalar(
        on,
        "select scheduled_tweet_id from public.reply_drafts where id = %s",
        (second["draft_id"],),
    )
    post(on, "32", content="unsubscribe", conversation="3")
    states = dict(on.execute("select id, status from public.reply_drafts order by id").fetchall())
    assert states == {first["draft_id"]: "cancelled", second["draft_id"]: "cancelled"}
    assert (
        scalar(on, "select status from public.scheduled_tweets where id = %s", (scheduled,))
        == "cancelled"
    )
    assert (
        scalar(
            on, "select count(*) from public.jobs where kind = 'post_tweet' and status = 'queued'"
        )
        == 0
    )


# -- storing drafts -------------------------------------------------------------------------------


def test_one_draft_per_post_and_per_conversation_turn(on: psycopg.Connection) -> None:
    post(on, "40", conversation="900")
    post(on, "41", conversation="900")  # the same author, the same conversation: the same turn
    post(on, "42", author="701", conversation="900")  # someone else in it: their own turn
    stored = record(on, "40")
    assert stored["status"] == "awaiting_approval" and stored["refusal"] is None
    assert record(on, "40")["refusal"] == (
        f"draft {stored['draft_id']} answers this post already (one reply per interaction)"
    )
    assert record(on, "41")["refusal"] == (
        f"draft {stored['draft_id']} is open for this conversation turn (one reply per turn)"
    )
    assert record(on, "42")["refusal"] is None
    # The index holds it even for a writer that skips the function.
    with pytest.raises(psycopg.errors.UniqueViolation):
        on.execute(
            "insert into public.reply_drafts (reply_id, author_id, conversation_id, content, expires_at)"
            " values ('41', '700', '900', 'x', now() + interval '1 hour')"
        )
    # Once answered, a post from before the answer is the same turn; a later one a new turn.
    on.execute(
        "update public.reply_drafts set status = 'approved' where id = %s", (stored["draft_id"],)
    )
    on.execute(
        "update public.scheduled_tweets set status = 'posted', tweet_id = '77', posted_at = now()"
        " where reply_draft_id = %s",
        (stored["draft_id"],),
    )
    assert record(on, "41")["refusal"] == (
        f"draft {stored['draft_id']} already answered this conversation turn (one reply per turn)"
    )
    post(on, "43", conversation="900", created_at=datetime.now(UTC) + timedelta(seconds=5))
    assert record(on, "43")["refusal"] is None


def test_daily_caps_and_the_reply_window(on: psycopg.Connection) -> None:
    configure(on, daily_cap=3, per_author_daily_cap=2, reply_window_hours=2)
    for i, author in enumerate(("700", "700", "700", "701", "702")):
        post(on, f"5{i}", author=author, conversation=f"c{i}")
    assert [record(on, f"5{i}")["refusal"] for i in range(5)] == [
        None,
        None,
        "the author's daily cap of 2 drafts is reached (configs.conversation.per_author_daily_cap)",
        None,
        "the daily cap of 3 drafts is reached (configs.conversation.daily_cap)",
    ]
    post(on, "59", author="703", created_at=datetime.now(UTC) - timedelta(hours=3))
    configure(on, daily_cap=50)
    assert record(on, "59")["refusal"] == (
        "the post is older than configs.conversation.reply_window_hours (2 h): a late answer is worse than none"
    )


# -- deciding -------------------------------------------------------------------------------------


def test_approval_creates_the_reply_post_and_its_outcome_comes_back(on: psycopg.Connection) -> None:
    post(on, "60")
    d = record(on, "60", "  Thanks, Alice!  ")
    (approved,) = rows(on, "select * from public.approve_reply_draft(%s, null)", d["draft_id"])
    assert approved["status"] == "approved" and approved["content"] == "Thanks, Alice!"
    (st,) = rows(
        on, "select * from public.scheduled_tweets where id = %s", approved["scheduled_tweet_id"]
    )
    assert (st["content"], st["in_reply_to_tweet_id"], st["source"], st["status"]) == (
        "Thanks, Alice!",
        "60",
        "reply",
        "pending",
    )
    assert scalar(on, "select kind from public.jobs where id = %s", (st["job_id"],)) == "post_tweet"
    with pytest.raises(
        psycopg.errors.CheckViolation, match="only a draft awaiting approval can be edited"
    ):
        on.execute("select * from public.edit_reply_draft(%s, 'too late')", (d["draft_id"],))
    on.execute(
        "update public.scheduled_tweets set status = 'posted', tweet_id = '88', posted_at = now() where id = %s",
        (st["id"],),
    )
    (done,) = rows(on, "select * from public.reply_drafts where id = %s", d["draft_id"])
    assert (done["status"], done["tweet_id"]) == ("posted", "88") and done["posted_at"]
    with pytest.raises(psycopg.errors.CheckViolation, match="posted is final"):
        on.execute("select * from public.reject_reply_draft(%s)", (d["draft_id"],))

    post(on, "61", conversation="c61")
    failing = record(on, "61")
    on.execute("select * from public.approve_reply_draft(%s, 'New words')", (failing["draft_id"],))
    on.execute(
        "update public.scheduled_tweets set status = 'failed', error = 'X refused it' where reply_draft_id = %s",
        (failing["draft_id"],),
    )
    (failed,) = rows(on, "select * from public.reply_drafts where id = %s", failing["draft_id"])
    assert (failed["status"], failed["error"], failed["content"]) == (
        "failed",
        "X refused it",
        "New words",
    )
    assert failed["edited_at"] is not None


def test_edit_reject_and_the_text_door(on: psycopg.Connection) -> None:
    post(on, "70")
    d = record(on, "70")
    (edited,) = rows(
        on, "select * from public.edit_reply_draft(%s, ' Better words ')", d["draft_id"]
    )
    assert edited["content"] == "Better words" and edited["edited_at"] is not None
    for text, message in (("   ", "the text is empty"), ("x" * 281, "at least 281 weighted characters"),
                          ("bad \ufeff", "a character X refuses")):  # fmt: skip
        with pytest.raises(psycopg.errors.CheckViolation, match=message):
            on.execute("select * from public.edit_reply_draft(%s, %s)", (d["draft_id"], text))
    (rejected,) = rows(on, "select * from public.reject_reply_draft(%s)", d["draft_id"])
    assert rejected["status"] == "rejected" and rejected["decided_at"] is not None
    with pytest.raises(psycopg.errors.CheckViolation, match="rejected is final"):
        on.execute("select * from public.approve_reply_draft(%s, null)", (d["draft_id"],))
    assert scalar(on, "select count(*) from public.scheduled_tweets") == 0
    assert rows(on, "select * from public.approve_reply_draft(123456, null)") == []


def test_expiry(on: psycopg.Connection) -> None:
    configure(on, expire_after_minutes=5)
    post(on, "80", conversation="a")
    post(on, "81", conversation="b")
    post(on, "82", conversation="c")
    late, waiting, approved = record(on, "80"), record(on, "81"), record(on, "82")
    on.execute(
        "update public.reply_drafts set status = 'approved' where id = %s", (approved["draft_id"],)
    )
    on.execute(
        "update public.reply_drafts set expires_at = now() - interval '1 second',"
        " created_at = now() - interval '6 minutes' where id = %s",
        (late["draft_id"],),
    )
    # Approving too late expires it instead: nothing is posted.
    (answer,) = rows(
        on, "select * from public.approve_reply_draft(%s, 'changed')", late["draft_id"]
    )
    assert (answer["status"], answer["content"]) == ("expired", "thanks!")
    assert (
        scalar(
            on,
            "select count(*) from public.scheduled_tweets where reply_draft_id = %s",
            (late["draft_id"],),
        )
        == 0
    )
    assert scalar(on, "select public.expire_reply_drafts()") == 0  # the others are in time
    on.execute(
        "update public.reply_drafts set expires_at = now() where id = %s", (waiting["draft_id"],)
    )
    # an approved reply whose post has not started after the same time is cancelled
    on.execute(
        "update public.reply_drafts set approved_at = now() - interval '6 minutes' where id = %s",
        (approved["draft_id"],),
    )
    assert scalar(on, "select public.expire_reply_drafts()") == 2
    states = dict(on.execute("select id, status from public.reply_drafts").fetchall())
    assert states == {
        late["draft_id"]: "expired",
        waiting["draft_id"]: "expired",
        approved["draft_id"]: "expired",
    }
    assert (
        scalar(
            on,
            "select status from public.scheduled_tweets where reply_draft_id = %s",
            (approved["draft_id"],),
        )
        == "cancelled"
    )
    assert scalar(on, "select public.expire_reply_drafts()") == 0


def test_auto_approval_needs_x_approval_on_record(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="x_ai_reply_approval_granted"):
        configure(conn, approval="auto")
    conn.execute("update public.x_account set user_id = %s where id = 1", (BOT,))
    configure(conn, enabled=True, approval="auto", x_ai_reply_approval_granted=True)
    post(conn, "90")
    stored = record(conn, "90")
    assert stored["status"] == "approved"
    assert (
        scalar(
            conn, "select approval from public.reply_drafts where id = %s", (stored["draft_id"],)
        )
        == "auto"
    )
    assert scalar(conn, "select count(*) from public.scheduled_tweets where source = 'reply'") == 1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"approval": "sometimes"}, 'must be "required" or "auto"'),
        ({"daily_cap": -1}, "daily_cap must be between 0 and 10000"),
        ({"expire_after_minutes": 1}, "expire_after_minutes must be between 5 and 10080"),
        ({"languages": "en"}, "languages must be a array"),
        ({"skip_authors": [1, 2]}, "skip_authors must be a list of strings"),
        (
            {"quiet_hours": {"start": "22:00", "end": "7:00"}},
            'quiet_hours.end must be a time like "22:00"',
        ),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
            "IANA time zone",
        ),
        ({"reply_window_hours": 1.5}, "reply_window_hours must be a whole number"),
    ],
)
def test_the_config_door(
    shared_conn: psycopg.Connection, patch: dict[str, Any], message: str
) -> None:
    with (
        shared_conn.transaction(force_rollback=True),
        pytest.raises(psycopg.errors.InvalidParameterValue, match=message),
    ):
        configure(shared_conn, **patch)


def test_a_good_config_is_accepted(shared_conn: psycopg.Connection) -> None:
    good = {
        "enabled": True,
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
        "languages": ["en", "ja"],
        "min_author_followers": 10,
    }
    with shared_conn.transaction(force_rollback=True):
        configure(shared_conn, **good)
        value = scalar(shared_conn, "select value from public.configs where key = 'conversation'")
        assert Conversation.model_validate(value).quiet_hours is not None


# -- the worker's guards say what SQL says -----------------------------------------------------


def test_the_workers_policy_agrees_with_sql_case_by_case(on: psycopg.Connection) -> None:
    configure(on, skip_authors=["mallory"], languages=["en"], daily_cap=5, per_author_daily_cap=2,
              reply_window_hours=3)  # fmt: skip
    on.execute("insert into public.reply_opt_outs (author_id, phrase) values ('666', 'stop')")
    cases = [
        ("100", {}),
        ("101", {"author": BOT}),
        ("102", {"author": "703", "username": "Mallory"}),
        ("103", {"author": "666"}),
        ("104", {"mentions": False}),
        ("105", {"lang": "pt"}),
        ("106", {"created_at": datetime.now(UTC) - timedelta(hours=4)}),
        ("107", {"conversation": "t1"}),
        ("108", {"conversation": "t1"}),  # the same turn as 107 once 107 has a draft
        ("109", {"author": "704", "conversation": "t2"}),
        ("110", {"author": "705", "conversation": "t3"}),
        ("111", {"conversation": "t5"}),  # the author's third: over the per-author cap
        ("112", {"author": "706", "conversation": "t4"}),  # the fifth draft of the day
        ("113", {"author": "707", "conversation": "t6"}),  # over the daily cap
    ]
    conv = Conversation.model_validate(
        scalar(on, "select value from public.configs where key = 'conversation'")
    )
    for reply_id, kw in cases:
        post(on, reply_id, **kw)
    verdicts = []
    for reply_id, _ in cases:
        sql = scalar(on, "select public.reply_draft_refusal(%s)", (reply_id,))
        with on.cursor(row_factory=dict_row) as cur:
            facts = cur.execute(query("reply_draft_facts"), {"reply_id": reply_id}).fetchone()
        assert facts is not None
        python = refusal(ReplyFacts.from_row(facts), conv, datetime.now(UTC))
        assert python == sql, reply_id
        verdicts.append(sql)
        if sql is None:
            assert record(on, reply_id)["refusal"] is None
    assert [i for i, v in zip(cases, verdicts, strict=True) if v is None] == [
        cases[0],
        cases[7],
        cases[9],
        cases[10],
        cases[12],
    ]
    assert verdicts[11].startswith("the author's daily cap")
    assert verdicts[13].startswith("the daily cap")
