"""chirpbase's SQL functions cannot be abused through their arguments or the caller's session.

Only the owner and the service role may call them (tests/sql/test_access.py). These tests take
the caller's side anyway, as a compromised or buggy client would: a hijacked search_path, SQL in
every text argument, huge and negative numbers, times no client can read, and one worker reaching
for another worker's jobs.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.sql.helpers import claim, enqueue, job, scalar

# Built-ins the function bodies use, shadowed in a schema the caller puts first.
SPIED_FUNCTIONS = {
    "now": ("", "timestamptz", "pg_catalog.now()"),
    "random": ("", "double precision", "pg_catalog.random()"),
    "left": ("a text, b integer", "text", "pg_catalog.left(a, b)"),
    "length": ("a text", "integer", "pg_catalog.length(a)"),
    "jsonb_typeof": ("a jsonb", "text", "pg_catalog.jsonb_typeof(a)"),
    "regexp_replace": (
        "a text, b text, c text, d text",
        "text",
        "pg_catalog.regexp_replace(a, b, c, d)",
    ),
    "hashtext": ("a text", "integer", "pg_catalog.hashtext(a)"),
    "date_trunc": ("a text, b timestamptz", "timestamptz", "pg_catalog.date_trunc(a, b)"),
    "make_interval": (
        "years integer default 0, months integer default 0, weeks integer default 0,"
        " days integer default 0, hours integer default 0, mins integer default 0,"
        " secs double precision default 0",
        "interval",
        "pg_catalog.make_interval(years, months, weeks, days, hours, mins, secs)",
    ),
}
SHADOW_TABLES = ("jobs", "job_kinds", "alerts", "configs", "quota_usage", "scheduled_tweets",
                 "api_usage", "replies", "x_account", "tweets")  # fmt: skip


def _plant_traps(conn: psycopg.Connection, admin_dsn: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("create schema evil authorization postgres")
    conn.execute("create table evil.calls (fn text not null)")
    for name, (args, returns, body) in SPIED_FUNCTIONS.items():
        conn.execute(
            f"create function evil.{name}({args}) returns {returns} language plpgsql as $$"
            f" begin insert into evil.calls values ('{name}'); return {body}; end $$"
        )
    conn.execute(
        "create function evil.text_eq(a text, b text) returns boolean language plpgsql as $$"
        " begin insert into evil.calls values ('='); return a operator(pg_catalog.=) b; end $$"
    )
    conn.execute(
        "create operator evil.= (leftarg = text, rightarg = text, function = evil.text_eq)"
    )
    for table in SHADOW_TABLES:
        conn.execute(f"create table evil.{table} (like public.{table})")


def _calls(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("select fn from evil.calls").fetchall()]


def test_a_hijacked_search_path_reaches_no_function_body(
    conn: psycopg.Connection, admin_dsn: str
) -> None:
    _plant_traps(conn, admin_dsn)
    # The like path runs too: Enterprise access, auto_like on (set before the path is hijacked).
    conn.execute(
        "update public.configs set value = value || '{\"plan\": \"enterprise\"}' where key = 'quotas'"
    )
    conn.execute(
        "update public.configs set value = value || '{\"auto_like\": true}'"
        " where key = 'engagement'"
    )
    conn.execute("set search_path = evil, pg_catalog, public")
    # Control: outside chirpbase's functions the traps do fire.
    conn.execute("select now(), 'a' = 'a', length('x')")
    assert sorted(_calls(conn)) == ["=", "length", "now"]
    conn.execute("delete from evil.calls")

    # Every entry point, through the queue API, the triggers and the quota/alert helpers.
    job_id = scalar(conn, "select public.enqueue_job('noop', '{}'::jsonb, null, 0, 'trap:1', 2)")
    assert (
        scalar(conn, "select public.enqueue_job('noop', '{}'::jsonb, null, 0, 'trap:1')") == job_id
    )
    [claimed] = claim(conn, "w1")
    assert claimed["id"] == job_id
    tok = claimed["lease_token"]
    assert conn.execute(
        "select * from public.heartbeat_jobs('w1', array[%s::bigint], array[%s::bigint])",
        (job_id, tok),
    ).fetchall()
    assert scalar(conn, "select public.holds_lease(%s, 'w1', %s)", (job_id, tok)) is True
    assert scalar(conn, "select public.fail_job(%s, 'w1', %s, 'boom')", (job_id, tok)) == "queued"
    conn.execute("update public.jobs set run_at = pg_catalog.now() where id = %s", (job_id,))
    [claimed] = claim(conn, "w1")
    assert (
        scalar(
            conn,
            "select public.fail_job(%s, 'w1', %s, 'boom again')",
            (job_id, claimed["lease_token"]),
        )
        == "dead"
    )
    assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
    [again] = claim(conn, "w2")
    assert scalar(
        conn,
        "select public.snooze_job(%s, 'w2', %s, pg_catalog.now())",
        (again["id"], again["lease_token"]),
    )
    [again] = claim(conn, "w2")
    assert (
        scalar(
            conn,
            "select public.release_jobs('w2', array[%s::bigint], array[%s::bigint])",
            (job_id, again["lease_token"]),
        )
        == 1
    )
    [last] = claim(conn, "w3")
    assert (
        scalar(
            conn,
            "select public.complete_job(%s, 'w3', %s, '{\"ok\": 1}')",
            (job_id, last["lease_token"]),
        )
        is True
    )
    assert scalar(conn, "select public.post_reservation_month(0)") is None
    other = enqueue(conn)
    assert scalar(conn, "select public.cancel_job(%s)", (other,)) is True
    scalar(conn, "select public.reap_expired_leases()")
    scalar(conn, "select public.prune_finished_jobs(interval '0 seconds')")
    scalar(conn, "select public.retry_delay(3)")
    alert_id = scalar(conn, "select public.raise_alert('info', 'trap', 'trap:a', 'm')")
    assert scalar(conn, "select public.raise_alert('info', 'trap', 'trap:a', 'm2')") == alert_id
    assert scalar(conn, "select public.resolve_alert('trap:a')") is True
    scalar(conn, "select public.raise_alert('info', 'trap', 'trap:b', 'm')")
    assert scalar(conn, "select public.close_alert('trap:b', 'why')") is True
    assert scalar(conn, "select public.consume_quota('posts', 1)") is True
    scalar(conn, "select public.refund_quota('posts', 1)")
    scalar(conn, "select public.record_api_usage('trap', 1, 1)")
    assert scalar(conn, "select public.config_value('quotas') ->> 'plan'") == "enterprise"
    assert len(conn.execute("select * from public.quota_caps()").fetchall()) == 4
    # X access, prices, the budget and the billing cycle.
    assert scalar(conn, "select public.x_access_tier()") == "enterprise"
    assert scalar(conn, "select public.x_tier_allows('likes')") is True
    assert scalar(conn, "select public.x_capability_available('quotes')") is True
    scalar(conn, "select public.x_capability_notice('likes')")
    assert scalar(conn, "select public.x_summoned_by('777')") is False
    scalar(conn, "select public.x_price('post')")
    scalar(conn, "select public.record_x_usage('trap', 'post_read', resource_kind => 'post',"
                 " resource_ids => array['1', '2'])")  # fmt: skip
    assert scalar(conn, "select public.reserve_usd('spend_usd', 0.01)") is True
    scalar(conn, "select public.settle_usd('spend_usd', 0.01, 0.02)")
    assert scalar(conn, "select public.consume_quota_upto('reads', 50, 5)") == 50
    scalar(conn, "select public.billing_cycle_start()")
    conn.execute("select * from public.billing_cycle()").fetchall()
    scalar(conn, "select public.set_cap_reset_day(3)")
    scalar(conn, "select public.enqueue_periodic_job('noop', 'trap', 0, 1)")
    [to_skip] = claim(conn, "w4")
    assert (
        scalar(
            conn,
            "select public.skip_job(%s, 'w4', %s, 'trap')",
            (to_skip["id"], to_skip["lease_token"]),
        )
        is True
    )
    assert scalar(conn, "select public.pause_x_capability('quotes', 'trap')") is True
    conn.execute("select * from public.evaluate_alerts()").fetchall()
    scalar(conn, "select public.sync_schedules()")
    assert scalar(conn, "select public.tweet_length_at_least('hi https://x.com \u6f22')") == 29
    conn.execute("select public.validate_config('persona', '{\"name\": \"n\"}')")
    tweet = scalar(conn, "select public.schedule_generated_tweet()")
    conn.execute("update public.scheduled_tweets set status = 'cancelled' where id = %s", (tweet,))
    conn.execute("insert into public.scheduled_tweets (content) values (' trap ')")
    draft = scalar(conn, "select public.schedule_generated_tweet()")
    conn.execute(
        "update public.scheduled_tweets set status = 'awaiting_approval', content = 'd'"
        " where id = %s",
        (draft,),
    )
    conn.execute("select * from public.edit_scheduled_tweet(%s, ' edited ')", (draft,))
    conn.execute("select * from public.reschedule_scheduled_tweet(%s, pg_catalog.now())", (draft,))
    thread = scalar(
        conn,
        "insert into public.scheduled_tweets (topic, thread_parts) values ('trap', 2) returning id",
    )
    conn.execute(
        "update public.scheduled_tweets set status = 'awaiting_approval', thread = '{one,two}'"
        " where id = %s",
        (thread,),
    )
    conn.execute("select * from public.edit_thread_part(%s, 2, ' second ')", (thread,))
    conn.execute("update public.scheduled_tweets set status = 'approved' where id = %s", (thread,))
    conn.execute("select * from public.reschedule_scheduled_tweet(%s, pg_catalog.now())", (thread,))
    conn.execute("insert into public.replies (reply_id, author_id) values ('777', '42')")
    conn.execute(
        "insert into public.scheduled_tweets (content, in_reply_to_tweet_id, quote_tweet_id)"
        " values ('a reply with a link: example.com', '777', '778')"
    )
    # (the test's own comparisons name pg_catalog's operator: only function bodies are on trial)
    conn.execute(
        'update public.configs set value = value || \'{"tone": "t"}\''
        " where key operator(pg_catalog.=) 'persona'"
    )
    conn.execute(
        "update public.configs set value = value where key operator(pg_catalog.=) 'schedule'"
    )

    assert _calls(conn) == [], "a chirpbase function resolved a name through the caller's path"
    for table in SHADOW_TABLES:
        assert scalar(conn, f"select count(*) from evil.{table}") == 0, table
    conn.execute("set search_path = public, extensions")
    assert scalar(conn, "select count(*) from public.jobs where kind = 'like_reply'") == 1
    assert (
        scalar(conn, "select content from public.scheduled_tweets where content = 'trap'") == "trap"
    )


INJECTIONS = (
    "'; drop table public.jobs; --",
    "$$; drop table public.jobs; $$",
    "x') or ('1' = '1",
    "noop' or kind <> '",
    "%s %(id)s %n {0}",
    "\\'; select pg_sleep(5); --",
    "chirpbase-reap-leases",
    "\u202e\u200d\U0001f468\u200d\U0001f469",
    "a" * 100_000,
)


def _tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'"
    ).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("text", INJECTIONS, ids=lambda t: repr(t[:24]))
def test_sql_in_text_arguments_is_only_ever_data(conn: psycopg.Connection, text: str) -> None:
    tables = _tables(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown job kind"):
        conn.execute("select public.enqueue_job(%s)", (text,))
    job_id = scalar(
        conn, "select public.enqueue_job('noop', %s, null, 0, %s)", (Jsonb({"x": text}), text)
    )
    assert scalar(conn, "select public.enqueue_job('noop', '{}', null, 0, %s)", (text,)) == job_id
    assert claim(conn, "someone-else", kinds=(text,)) == []
    [claimed] = claim(conn, text)
    assert claimed["locked_by"] == text and claimed["payload"] == {"x": text}
    assert (
        scalar(
            conn,
            "select public.fail_job(%s, %s, %s, %s)",
            (job_id, text, claimed["lease_token"], text),
        )
        == "queued"
    )
    assert job(conn, job_id)["last_error"] == text[:4000]

    alert_id = scalar(
        conn,
        "select public.raise_alert('info', %s, %s, %s, %s)",
        (text, text, text, Jsonb({"why": text})),
    )
    row = conn.execute(
        "select kind, dedupe_key, message, details from public.alerts where id = %s", (alert_id,)
    ).fetchone()
    assert row == (text, text, text, {"why": text})
    assert scalar(conn, "select public.close_alert(%s, %s)", (text, text)) is True
    assert scalar(conn, "select public.config_value(%s)", (text,)) == {}
    conn.execute("select public.validate_config(%s, '{}')", (text,))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown quota resource"):
        conn.execute("select public.consume_quota(%s, 1)", (text,))
    conn.execute("select public.record_api_usage(%s, 1)", (text,))
    assert scalar(conn, "select count(*) from public.api_usage where endpoint = %s", (text,)) == 1
    short = text[:200]
    if short.strip():
        tweet = conn.execute(
            "insert into public.scheduled_tweets (topic) values (%s) returning topic", (short,)
        ).fetchone()
        assert tweet == (short.strip(),)

    assert _tables(conn) == tables


def test_numbers_out_of_every_range_are_refused_or_harmless(conn: psycopg.Connection) -> None:
    queued = enqueue(conn)
    for n in (-1, 0, -(2**31)):
        assert claim(conn, "w", max_jobs=n) == []
    assert job(conn, queued)["status"] == "queued"
    assert [j["id"] for j in claim(conn, "w", max_jobs=2**31 - 1)] == [queued]

    for priority in (2**31 - 1, -(2**31)):
        enqueue(conn, priority=priority)
    for max_attempts in (0, -5):
        with pytest.raises(psycopg.errors.CheckViolation):
            enqueue(conn, max_attempts=max_attempts)
    cases: list[tuple[int | None, float, float]] = [
        (2**31 - 1, 2700, 3600),
        (-(2**31), 3.75, 6.25),
        (None, 3.75, 6.25),
    ]
    for attempts, lo, hi in cases:
        secs = scalar(conn, "select extract(epoch from public.retry_delay(%s))", (attempts,))
        assert lo <= float(secs) <= hi, (attempts, secs)

    # Quotas: a negative consume would lower usage and lift the cap.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="amount must be zero or more"):
        conn.execute("select public.consume_quota('posts', -1000000)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="amount must be zero or more"):
        conn.execute("select public.consume_quota('posts', null)")
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        conn.execute("select public.consume_quota('posts', 1e30)")
    conn.execute(
        "update public.configs set value = value || '{\"plan\": \"free\"}' where key = 'quotas'"
    )
    assert scalar(conn, "select public.consume_quota('posts', 1e9)") is False
    assert scalar(conn, "select coalesce(sum(used), 0) from public.quota_usage") == 0

    # evaluate_alerts with nonsense thresholds and windows still just evaluates.
    conn.execute(
        "select * from public.evaluate_alerts(-2147483648, interval '-1 day', interval '-1 day')"
    )


@pytest.mark.parametrize(
    "when", ["infinity", "-infinity", "10000-01-01", "9999-12-31 23:00-05", "0044-03-15 BC"]
)
def test_no_job_gets_a_time_clients_cannot_read(conn: psycopg.Connection, when: str) -> None:
    """Python's datetime spans years 1-9999: one unreadable run_at broke every claim and every
    wake-up query of the worker. Every way to set run_at is refused instead."""
    with pytest.raises(psycopg.errors.CheckViolation, match="jobs_run_at_in_range"):
        conn.execute("select public.enqueue_job('noop', '{}', %s::timestamptz)", (when,))
    job_id = enqueue(conn)
    [held] = claim(conn, "w")
    past = when.startswith("-") or "BC" in when
    if past:  # snoozing until the past means "now"
        assert scalar(
            conn,
            "select public.snooze_job(%s, 'w', %s, %s::timestamptz)",
            (job_id, held["lease_token"], when),
        )
        [held] = claim(conn, "w")
    else:
        with pytest.raises(psycopg.errors.CheckViolation, match="jobs_run_at_in_range"):
            conn.execute(
                "select public.snooze_job(%s, 'w', %s, %s::timestamptz)",
                (job_id, held["lease_token"], when),
            )
    far = "-5000 years" if past else "8000 years"
    tok = held["lease_token"]
    with pytest.raises(psycopg.errors.CheckViolation, match="jobs_run_at_in_range"):
        conn.execute("select public.fail_job(%s, 'w', %s, 'e', %s::interval)", (job_id, tok, far))
    with pytest.raises(psycopg.errors.DatetimeFieldOverflow):
        conn.execute(
            "select public.fail_job(%s, 'w', %s, 'e', interval '1000000 years')", (job_id, tok)
        )
    assert job(conn, job_id)["status"] == "running"  # refused calls changed nothing

    # The operator's interface refuses them first, with its own message.
    with pytest.raises(psycopg.errors.CheckViolation, match="scheduled_for"):
        conn.execute(
            "insert into public.scheduled_tweets (content, scheduled_for) values ('x', %s::timestamptz)",
            (when,),
        )
    tweet = scalar(conn, "insert into public.scheduled_tweets (content) values ('y') returning id")
    with pytest.raises(psycopg.errors.CheckViolation, match="outside the allowed window"):
        conn.execute(
            "update public.scheduled_tweets set scheduled_for = %s::timestamptz where id = %s",
            (when, tweet),
        )
    # And nothing the worker reads chokes.
    conn.execute("select min(run_at), max(run_at) from public.jobs").fetchone()


def _held(conn: psycopg.Connection, job_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "select status, locked_by, locked_until, attempts, last_error, result from public.jobs"
        " where id = %s",
        (job_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("intruder", ["w2", "W1", "w1 ", "", None, "w1' or '1'='1"])
def test_one_worker_cannot_touch_another_workers_job(
    conn: psycopg.Connection, intruder: str | None
) -> None:
    job_id = enqueue(conn)
    [held] = claim(conn, "w1")
    before = _held(conn, job_id)
    assert before[:2] == ("running", "w1")
    ids = [job_id]
    # Even with the right token: the claim is w1's.
    tok = held["lease_token"]
    tokens = [tok]
    assert scalar(conn, "select public.complete_job(%s, %s, %s)", (job_id, intruder, tok)) is False
    assert (
        conn.execute(
            "select * from public.complete_jobs(%s, %s, %s)", (intruder, ids, tokens)
        ).fetchall()
        == []
    )
    assert (
        conn.execute(
            "select * from public.heartbeat_jobs(%s, %s, %s)", (intruder, ids, tokens)
        ).fetchall()
        == []
    )
    assert (
        scalar(
            conn,
            "select public.fail_job(%s, %s, %s, 'x', null, false)",
            (job_id, intruder, tok),
        )
        is None
    )
    assert (
        scalar(conn, "select public.snooze_job(%s, %s, %s, now())", (job_id, intruder, tok))
        is False
    )
    assert scalar(conn, "select public.release_jobs(%s, %s, %s)", (intruder, ids, tokens)) == 0
    assert scalar(conn, "select public.holds_lease(%s, %s, %s)", (job_id, intruder, tok)) is False
    assert _held(conn, job_id) == before
    # The owner still holds it and finishes normally.
    assert scalar(conn, "select public.complete_job(%s, 'w1', %s)", (held["id"], tok)) is True


@pytest.mark.parametrize("anonymous", ["", None])
def test_an_anonymous_claim_takes_nothing(conn: psycopg.Connection, anonymous: str | None) -> None:
    """A job claimed by no worker id could be completed by no one until its lease ran out."""
    job_id = enqueue(conn)
    assert (
        conn.execute(
            "select * from public.claim_jobs(%s, array['noop'], 10, interval '1 minute')",
            (anonymous,),
        ).fetchall()
        == []
    )
    assert job(conn, job_id)["status"] == "queued"
