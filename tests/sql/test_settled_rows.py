"""A job that ends without its handler writing the row's outcome leaves no row behind.

Every way a job of a kind that owns a `scheduled_tweets` row can end on its own: reaped to `dead`
by `reap_expired_leases`, dead-lettered by `fail_job` (not retryable, or out of attempts),
`cancel_job`, `skip_job`, an operator's UPDATE. For each, what the row becomes (migration
`jobs_settle_their_rows`): a generation that wrote nothing fails with the reason; a post that
never reached X fails (nothing reserved, nothing refunded); a post in `posting` goes through
`reconcile_post` before anything else, which refunds the reservation only when X has no post;
a reconciliation that could not finish fails the row saying the outcome is unknown. Plus what
keeps it safe: the hot path never runs the trigger, a locked row never stalls the reaper, an
error never fails the job's own update, and the sweep settles whatever the trigger could not.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.sql.helpers import claim, enqueue, expire_lease, job, open_alerts, scalar
from tests.sql.test_threads import row
from worker.db import query

pytestmark = pytest.mark.timeout(60)


def insert(conn: psycopg.Connection, **cols: Any) -> int:
    names = ", ".join(cols)
    marks = ", ".join(["%s"] * len(cols))
    return int(
        scalar(
            conn,
            f"insert into public.scheduled_tweets ({names}) values ({marks}) returning id",
            tuple(cols.values()),
        )
    )


def jobs_of(conn: psycopg.Connection, row_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "select * from public.jobs where (payload ->> 'scheduled_tweet_id')::bigint = %s"
            " and payload ? 'scheduled_tweet_id' order by id",
            (row_id,),
        ).fetchall()


def posts_used(conn: psycopg.Connection, month: Any = None) -> float:
    return float(
        scalar(
            conn,
            "select coalesce(sum(used), 0) from public.quota_usage where resource = 'posts'"
            " and month = coalesce(%s::date, public.current_month())",
            (month,),
        )
    )


def reap_to_death(conn: psycopg.Connection, job_id: int, kind: str) -> None:
    """Claim the job and let its lease run out until it is dead (a starved worker)."""
    while job(conn, job_id)["status"] != "dead":
        [claimed] = claim(conn, worker="starved", kinds=(kind,))
        assert claimed["id"] == job_id
        yield_to_handler(conn, claimed)
        expire_lease(conn, job_id)
        assert scalar(conn, "select public.reap_expired_leases()") == 1


def yield_to_handler(conn: psycopg.Connection, claimed: dict[str, Any]) -> None:
    """What the handler does first once it holds the claim: generation claims its row, a post
    marks its row `posting` and takes its quota (the worker's own queries)."""
    row_id = int(claimed["payload"]["scheduled_tweet_id"])
    if claimed["kind"] == "generate_tweet":
        assert conn.execute(query("claim_generation"), {"id": row_id}).fetchone() is not None
    elif claimed["kind"] == "post_tweet":
        carried_over = row(conn, row_id)["status"] == "posting"
        with conn.transaction():
            assert conn.execute(query("mark_posting"), {"id": row_id}).fetchone() is not None
            if not carried_over:  # a fresh attempt reserves; a carried-over one holds it already
                taken = conn.execute(query("consume_quota"), {"resource": "posts", "amount": 1})
                assert taken.fetchone()[0] is True  # type: ignore[index]


def fail(conn: psycopg.Connection, claimed: dict[str, Any], error: str, **kw: Any) -> str:
    return str(
        scalar(
            conn,
            "select public.fail_job(%(id)s, %(worker)s, lease_token => %(token)s,"
            " error => %(error)s, retryable => %(retryable)s)",
            {
                "id": claimed["id"],
                "worker": claimed["locked_by"],
                "token": claimed["lease_token"],
                "error": error,
                "retryable": kw.get("retryable", True),
            },
        )
    )


def generated(conn: psycopg.Connection, *, require_approval: bool) -> int:
    """A topic row whose generate_tweet job wrote its text and succeeded (the worker's queries)."""
    row_id = insert(conn, topic="queues")
    [claimed] = claim(conn, kinds=("generate_tweet",))
    yield_to_handler(conn, claimed)
    written = conn.execute(
        query("finish_generation"),
        {
            "id": row_id,
            "content": "words the model wrote",
            "image_path": None,
            "image_url": None,
            "alt_text": None,
            "require_approval": require_approval,
        },
    ).fetchone()
    assert written is not None
    assert scalar(
        conn,
        "select public.complete_job(%s, %s, %s)",
        (claimed["id"], claimed["locked_by"], claimed["lease_token"]),
    )
    return row_id


# -- generate_tweet ------------------------------------------------------------------------------


def test_a_generation_reaped_to_death_fails_its_row_with_the_reason_and_the_alert(
    conn: psycopg.Connection,
) -> None:
    """The flake seen under load: a lease lost on every attempt, the row left `generating`."""
    row_id = insert(conn, topic="advisory locks")
    job_id = row(conn, row_id)["job_id"]
    assert job(conn, job_id)["max_attempts"] == 4

    reap_to_death(conn, job_id, "generate_tweet")

    settled = row(conn, row_id)
    assert settled["status"] == "failed"
    assert settled["error"] == (
        f"generation job {job_id} dead after 4 attempt(s): lease expired: worker starved"
        " stopped heartbeating"
    )
    [alert] = open_alerts(conn, "job_dead")
    assert alert["dedupe_key"] == "job_dead:generate_tweet"
    assert f"generate_tweet job {job_id} is dead after 4 attempt(s)" in alert["message"]
    assert [j["kind"] for j in jobs_of(conn, row_id)] == ["generate_tweet"]  # nothing to post
    assert scalar(conn, "select count(*) from public.stranded_scheduled_tweets()") == 0


@pytest.mark.parametrize(
    ("retryable", "max_attempts"), [(False, 4), (True, 1)], ids=["not-retryable", "last-attempt"]
)
def test_a_generation_dead_lettered_by_fail_job_fails_its_row(
    conn: psycopg.Connection, retryable: bool, max_attempts: int
) -> None:
    row_id = insert(conn, topic="queues")
    job_id = row(conn, row_id)["job_id"]
    conn.execute("update public.jobs set max_attempts = %s where id = %s", (max_attempts, job_id))
    [claimed] = claim(conn, kinds=("generate_tweet",))
    yield_to_handler(conn, claimed)
    assert fail(conn, claimed, "TypeError: boom", retryable=retryable) == "dead"
    settled = row(conn, row_id)
    assert (settled["status"], settled["error"]) == (
        "failed",
        f"generation job {job_id} dead after 1 attempt(s): TypeError: boom",
    )


def test_a_retried_generation_job_is_not_settled_while_it_may_run_again(
    conn: psycopg.Connection,
) -> None:
    row_id = insert(conn, topic="queues")
    [claimed] = claim(conn, kinds=("generate_tweet",))
    yield_to_handler(conn, claimed)
    assert fail(conn, claimed, "OpenAI 503") == "queued"
    assert row(conn, row_id)["status"] == "generating"  # its next attempt takes it again


def test_a_cancelled_generation_job_cancels_its_row(conn: psycopg.Connection) -> None:
    row_id = insert(conn, topic="queues")
    job_id = row(conn, row_id)["job_id"]
    assert scalar(conn, "select public.cancel_job(%s)", (job_id,)) is True
    settled = row(conn, row_id)
    assert (settled["status"], settled["error"]) == (
        "cancelled",
        f"generation job {job_id} was cancelled before the text was written",
    )
    assert open_alerts(conn, "job_dead") == []


def test_an_operator_update_of_the_job_settles_the_row_too(conn: psycopg.Connection) -> None:
    row_id = insert(conn, topic="queues")
    job_id = row(conn, row_id)["job_id"]
    conn.execute(
        "update public.jobs set status = 'dead', last_error = 'given up by hand' where id = %s",
        (job_id,),
    )
    assert row(conn, row_id)["error"] == (
        f"generation job {job_id} dead after 0 attempt(s): given up by hand"
    )


def test_cancelling_a_row_whose_generation_waits_to_retry_cancels_it_once(
    conn: psycopg.Connection,
) -> None:
    """The row is `generating` (an attempt was reaped) and its job queued: cancelling the row
    cancels the job, whose end then finds the row cancelled already (no second change of the
    row by one command)."""
    row_id = insert(conn, topic="queues")
    job_id = row(conn, row_id)["job_id"]
    [claimed] = claim(conn, kinds=("generate_tweet",))
    yield_to_handler(conn, claimed)
    expire_lease(conn, job_id)
    assert scalar(conn, "select public.reap_expired_leases()") == 1
    assert (row(conn, row_id)["status"], job(conn, job_id)["status"]) == ("generating", "queued")

    conn.execute("update public.scheduled_tweets set status = 'cancelled' where id = %s", (row_id,))
    assert (row(conn, row_id)["status"], row(conn, row_id)["error"]) == ("cancelled", None)
    assert job(conn, job_id)["status"] == "cancelled"


def test_retrying_a_dead_generation_reopens_its_row(conn: psycopg.Connection) -> None:
    row_id = insert(conn, topic="queues")
    job_id = row(conn, row_id)["job_id"]
    reap_to_death(conn, job_id, "generate_tweet")
    assert row(conn, row_id)["status"] == "failed"

    assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
    reopened = row(conn, row_id)
    assert reopened["status"] == "pending"
    assert reopened["error"].startswith(f"generation job {job_id} retried (it had ended: ")
    [claimed] = claim(conn, kinds=("generate_tweet",))
    assert conn.execute(query("claim_generation"), {"id": row_id}).fetchone() is not None
    assert claimed["id"] == job_id


# -- post_tweet ----------------------------------------------------------------------------------


@pytest.mark.parametrize("approved", [False, True], ids=["pending", "approved"])
def test_a_post_that_never_reached_x_fails_when_its_job_dies(
    conn: psycopg.Connection, approved: bool
) -> None:
    if approved:
        row_id = generated(conn, require_approval=True)
        conn.execute(
            "update public.scheduled_tweets set status = 'approved' where id = %s", (row_id,)
        )
    else:
        row_id = insert(conn, content="never reaches X")
    job_id = row(conn, row_id)["job_id"]
    assert job(conn, job_id)["kind"] == "post_tweet"
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (job_id,))
    [claimed] = claim(conn, kinds=("post_tweet",))
    # X rejected the credentials: the handler put the row back to ready, then ran out of attempts.
    assert fail(conn, claimed, "X rejected the credentials: 401") == "dead"

    settled = row(conn, row_id)
    assert settled["status"] == "failed"
    assert settled["error"] == (
        f"post job {job_id} dead after 1 attempt(s): X rejected the credentials: 401;"
        " nothing was posted"
    )
    assert posts_used(conn) == 0  # nothing was reserved in these states
    assert [j["kind"] for j in jobs_of(conn, row_id) if j["kind"] == "reconcile_post"] == []


def test_approved_post_goes_back_to_approved_when_x_created_nothing(
    conn: psycopg.Connection,
) -> None:
    """unmark_posting (429, usage cap, auth on a fresh attempt) of an approved row."""
    row_id = generated(conn, require_approval=True)
    conn.execute("update public.scheduled_tweets set status = 'approved' where id = %s", (row_id,))
    assert conn.execute(query("mark_posting"), {"id": row_id}).fetchone() is not None
    conn.execute(query("unmark_posting"), {"id": row_id, "error": "waiting for X's rate limit"})
    assert row(conn, row_id)["status"] == "approved"


def test_a_cancelled_or_skipped_post_job_settles_its_ready_row(conn: psycopg.Connection) -> None:
    cancelled = insert(conn, content="cancelled before it ran")
    job_id = row(conn, cancelled)["job_id"]
    assert scalar(conn, "select public.cancel_job(%s)", (job_id,)) is True
    assert (row(conn, cancelled)["status"], row(conn, cancelled)["error"]) == (
        "cancelled",
        f"post job {job_id} was cancelled; nothing was posted",
    )

    skipped = insert(conn, content="not on this tier")
    [claimed] = claim(conn, kinds=("post_tweet",))
    assert scalar(
        conn,
        "select public.skip_job(%s, %s, lease_token => %s, reason => 'quotes need Enterprise')",
        (claimed["id"], claimed["locked_by"], claimed["lease_token"]),
    )
    assert (row(conn, skipped)["status"], row(conn, skipped)["error"]) == (
        "failed",
        f"post job {claimed['id']} was skipped: quotes need Enterprise; nothing was posted",
    )


def _posting(conn: psycopg.Connection, text: str) -> tuple[int, int]:
    """A post whose call to X went out and whose outcome is unknown (the row `posting`, one post
    reserved), its job claimed again and dead-lettered on its last attempt."""
    row_id = insert(conn, content=text)
    job_id = row(conn, row_id)["job_id"]
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (job_id,))
    [claimed] = claim(conn, kinds=("post_tweet",))
    yield_to_handler(conn, claimed)
    assert row(conn, row_id)["status"] == "posting" and posts_used(conn) == 1
    assert fail(conn, claimed, "X call outcome unknown (XServerError); will reconcile") == "dead"
    return row_id, job_id


def _reconciler(conn: psycopg.Connection, row_id: int) -> dict[str, Any]:
    [reconciler] = [j for j in jobs_of(conn, row_id) if j["kind"] == "reconcile_post"]
    return reconciler


def test_a_post_dead_in_posting_is_reconciled_not_failed(conn: psycopg.Connection) -> None:
    row_id, job_id = _posting(conn, "maybe on X")
    settled = row(conn, row_id)
    assert settled["status"] == "posting"  # X may have it: not failed, not posted again
    reconciler = _reconciler(conn, row_id)
    assert reconciler["status"] == "queued" and reconciler["max_attempts"] == 10
    assert settled["job_id"] == reconciler["id"]
    reason = (
        f"post job {job_id} dead after 1 attempt(s): X call outcome unknown (XServerError);"
        " will reconcile"
    )
    assert reconciler["payload"] == {
        "scheduled_tweet_id": row_id,
        "post_job_id": job_id,
        "ended": "dead",
        "reason": reason,
    }
    assert settled["error"] == (
        f"{reason}; the outcome of a call to X is unknown: reconcile_post job"
        f" {reconciler['id']} looks for the post on the account's timeline before anything else"
    )
    assert posts_used(conn) == 1  # the reservation stays with the row until X's answer is known
    assert open_alerts(conn, "job_dead")[0]["dedupe_key"] == "job_dead:post_tweet"


def test_a_post_reaped_to_death_in_posting_is_reconciled(conn: psycopg.Connection) -> None:
    row_id = insert(conn, content="starved mid-call")
    job_id = row(conn, row_id)["job_id"]
    conn.execute("update public.jobs set max_attempts = 2 where id = %s", (job_id,))
    reap_to_death(conn, job_id, "post_tweet")
    assert row(conn, row_id)["status"] == "posting"
    assert _reconciler(conn, row_id)["payload"]["reason"] == (
        f"post job {job_id} dead after 2 attempt(s): lease expired: worker starved stopped"
        " heartbeating"
    )
    assert posts_used(conn) == 1


def test_not_on_x_after_reconciliation_refunds_to_the_reservation_month(
    conn: psycopg.Connection,
) -> None:
    row_id, _job_id = _posting(conn, "not on X after all")
    # The reservation was taken last month: the call went out a second before this month began.
    conn.execute(
        "update public.scheduled_tweets set post_started_at ="
        " (public.current_month()::timestamp at time zone 'UTC') - interval '1 second'"
        " where id = %s",
        (row_id,),
    )
    last_month = scalar(conn, "select public.post_reservation_month(%s)", (row_id,))
    assert last_month < scalar(conn, "select public.current_month()")
    conn.execute("update public.quota_usage set month = %s where resource = 'posts'", (last_month,))

    assert conn.execute(
        query("settle_unposted"), {"id": row_id, "outcome": "failed", "error": "not on X"}
    ).fetchone() == ("failed",)
    assert (row(conn, row_id)["status"], row(conn, row_id)["error"]) == ("failed", "not on X")
    assert posts_used(conn, last_month) == 0 and posts_used(conn) == 0
    # Settled once: a second (stale) reconciliation changes nothing, refunds nothing.
    assert (
        conn.execute(
            query("settle_unposted"), {"id": row_id, "outcome": "failed", "error": "again"}
        ).fetchone()
        is None
    )
    assert row(conn, row_id)["error"] == "not on X"


def test_a_cancelled_post_waiting_to_reconcile_ends_cancelled_once_known_unposted(
    conn: psycopg.Connection,
) -> None:
    row_id = insert(conn, content="cancelled while unknown")
    job_id = row(conn, row_id)["job_id"]
    [claimed] = claim(conn, kinds=("post_tweet",))
    yield_to_handler(conn, claimed)
    assert fail(conn, claimed, "X call outcome unknown (XTimeout); will reconcile") == "queued"
    assert scalar(conn, "select public.cancel_job(%s)", (job_id,)) is True
    assert row(conn, row_id)["status"] == "posting"
    reconciler = _reconciler(conn, row_id)
    assert reconciler["payload"]["ended"] == "cancelled"

    assert conn.execute(
        query("settle_unposted"), {"id": row_id, "outcome": "cancelled", "error": "not on X"}
    ).fetchone() == ("cancelled",)
    settled = row(conn, row_id)
    assert (settled["status"], settled["post_started_at"], posts_used(conn)) == (
        "cancelled",
        None,
        0,
    )


def test_reconciliation_steps_aside_for_a_live_post_job(conn: psycopg.Connection) -> None:
    row_id, job_id = _posting(conn, "retried by hand meanwhile")
    assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
    assert row(conn, row_id)["status"] == "posting"  # not reopened: it may be on X
    assert (
        conn.execute(
            query("settle_unposted"), {"id": row_id, "outcome": "failed", "error": "not on X"}
        ).fetchone()
        is None
    )
    assert posts_used(conn) == 1  # the post job, carried over, reconciles first itself


def test_a_reconciliation_that_cannot_finish_fails_the_row_as_unknown(
    conn: psycopg.Connection,
) -> None:
    row_id, job_id = _posting(conn, "X unreachable")
    reconciler = _reconciler(conn, row_id)
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (reconciler["id"],))
    [claimed] = claim(conn, kinds=("reconcile_post",))
    assert fail(conn, claimed, "reconciliation failed (XServerError); will retry") == "dead"

    settled = row(conn, row_id)
    assert settled["status"] == "failed"
    assert settled["error"] == (
        f"outcome unknown: post job {job_id} dead after 1 attempt(s): X call outcome unknown"
        f" (XServerError); will reconcile; reconciliation job {reconciler['id']} dead after"
        " 1 attempt(s): reconciliation failed (XServerError); will retry. The post may be on X:"
        " look at the account's timeline before scheduling it again (its posts quota stays"
        " counted, as X may have billed it)"
    )
    assert posts_used(conn) == 1
    assert {a["dedupe_key"] for a in open_alerts(conn, "job_dead")} == {
        "job_dead:post_tweet",
        "job_dead:reconcile_post",
    }
    # Not reopened by a retry of the post job: it reached X (post_started_at is set).
    assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
    assert row(conn, row_id)["status"] == "failed"


def test_retrying_a_post_job_reopens_a_row_that_never_reached_x(conn: psycopg.Connection) -> None:
    row_id = insert(conn, content="tier changed since")
    job_id = row(conn, row_id)["job_id"]
    [claimed] = claim(conn, kinds=("post_tweet",))
    # The handler's refusal on this tier: the row failed before any call, the job skipped.
    conn.execute(query("mark_scheduled_failed"), {"id": row_id, "error": "quotes need Enterprise"})
    assert scalar(
        conn,
        "select public.skip_job(%s, %s, lease_token => %s, reason => 'quotes need Enterprise')",
        (claimed["id"], claimed["locked_by"], claimed["lease_token"]),
    )
    assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
    assert row(conn, row_id)["status"] == "pending"


# -- rows posted by post_tweet for threads and reply drafts -------------------------------------


def test_a_dead_part_fails_its_thread_and_cancels_the_rest(conn: psycopg.Connection) -> None:
    thread = insert(conn, thread=["part one 1/3", "part two 2/3", "part three 3/3"])
    with conn.cursor(row_factory=dict_row) as cur:
        part_rows = cur.execute(
            "select id, job_id from public.scheduled_tweets where thread_of = %s"
            " order by thread_position",
            (thread,),
        ).fetchall()
    first_job = part_rows[0]["job_id"]
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (first_job,))
    [claimed] = claim(conn, kinds=("post_tweet",))
    assert fail(conn, claimed, "image upload failed (XServerError)") == "dead"
    assert [row(conn, p["id"])["status"] for p in part_rows] == ["failed", "cancelled", "cancelled"]
    assert row(conn, thread)["status"] == "failed"
    assert row(conn, thread)["error"] == (
        f"part 1 of 3 failed: post job {first_job} dead after 1 attempt(s): image upload failed"
        " (XServerError); nothing was posted; 0 of 3 posted"
    )


def test_a_dead_reply_post_fails_its_draft(conn: psycopg.Connection) -> None:
    conn.execute("update public.x_account set user_id = '1' where id = 1")
    conn.execute(
        "update public.configs set value = value || '{\"enabled\": true}' where key = 'conversation'"
    )
    conn.execute(
        "insert into public.replies (reply_id, author_id, author_username, content,"
        " mentions_account, lang) values ('777', '700', 'alice', '@bot hello', true, 'en')"
    )
    [draft_id] = conn.execute(
        "select draft_id from public.record_reply_draft('777', 'Hi Alice!', '{}'::jsonb, 1, null)"
    ).fetchone()
    conn.execute("update public.reply_drafts set status = 'approved' where id = %s", (draft_id,))
    row_id = scalar(
        conn, "select scheduled_tweet_id from public.reply_drafts where id = %s", (draft_id,)
    )
    job_id = row(conn, row_id)["job_id"]
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (job_id,))
    [claimed] = claim(conn, kinds=("post_tweet",))
    assert fail(conn, claimed, "boom") == "dead"
    draft = conn.execute(
        "select status, error from public.reply_drafts where id = %s", (draft_id,)
    ).fetchone()
    assert draft == (
        "failed",
        f"post job {job_id} dead after 1 attempt(s): boom; nothing was posted",
    )
    # A retry does not reopen a reply: its draft's outcome is final.
    assert scalar(conn, "select public.retry_job(%s)", (job_id,)) is True
    assert row(conn, row_id)["status"] == "failed"


# -- what keeps it safe --------------------------------------------------------------------------


def test_the_hot_path_never_runs_the_trigger(admin_dsn: str, conn: psycopg.Connection) -> None:
    """queued -> running -> succeeded (and -> queued again) call no trigger function: the WHEN
    clause is false. Counted by PostgreSQL's function statistics in one transaction."""
    ids = [enqueue(conn, "post_tweet", {"scheduled_tweet_id": 10_000 + i}) for i in range(4)]
    with psycopg.connect(admin_dsn) as admin:
        admin.execute("set local track_functions = 'pl'")

        def calls() -> int:
            return int(
                scalar(
                    admin,
                    "select coalesce(sum(calls), 0) from pg_stat_xact_user_functions"
                    " where funcname in ('jobs_settle_owned_row', 'settle_job_row')",
                )
            )

        claimed = claim(admin, worker="hot", kinds=("post_tweet",), max_jobs=4)
        assert len(claimed) == 4
        by_id = {c["id"]: c for c in claimed}
        first, second, third, fourth = (by_id[i] for i in ids)
        assert scalar(
            admin, "select public.complete_job(%s, 'hot', %s)", (first["id"], first["lease_token"])
        )
        assert admin.execute(
            "select * from public.complete_jobs('hot', %s, %s)",
            ([second["id"]], [second["lease_token"]]),
        ).fetchall() == [(second["id"],)]
        assert fail(admin, third, "retry me") == "queued"
        assert scalar(
            admin,
            "select public.snooze_job(%s, 'hot', lease_token => %s, until => now())",
            (fourth["id"], fourth["lease_token"]),
        )
        assert calls() == 0
        [again] = claim(admin, worker="hot", kinds=("post_tweet",), max_jobs=1)
        assert fail(admin, again, "give up", retryable=False) == "dead"
        assert calls() == 2  # the trigger, and settle_job_row (no such row: nothing to do)
        admin.rollback()


def test_a_locked_row_never_stalls_the_reaper_and_the_sweep_settles_it(
    conn: psycopg.Connection, dsn: str
) -> None:
    row_id = insert(conn, topic="locked by an operator")
    job_id = row(conn, row_id)["job_id"]
    conn.execute("update public.jobs set max_attempts = 1 where id = %s", (job_id,))
    [claimed] = claim(conn, kinds=("generate_tweet",))
    yield_to_handler(conn, claimed)
    expire_lease(conn, job_id)
    with psycopg.connect(dsn) as operator:
        operator.execute(
            "select 1 from public.scheduled_tweets where id = %s for update", (row_id,)
        )
        conn.execute("set statement_timeout = '5s'")
        assert scalar(conn, "select public.reap_expired_leases()") == 1  # not blocked
        assert job(conn, job_id)["status"] == "dead"
        assert row(conn, row_id)["status"] == "generating"
        stranded = conn.execute(
            "select id, job_id, job_status from public.stranded_scheduled_tweets()"
        ).fetchall()
        assert stranded == [(row_id, job_id, "dead")]
        assert scalar(conn, "select public.settle_stranded_scheduled_tweets()") == 0  # still locked
        operator.rollback()
    assert scalar(conn, "select public.settle_stranded_scheduled_tweets()") == 1
    assert row(conn, row_id)["status"] == "failed"
    assert scalar(conn, "select count(*) from public.stranded_scheduled_tweets()") == 0


def test_an_error_never_fails_the_jobs_update_and_raises_an_alert(conn: psycopg.Connection) -> None:
    other = insert(conn, topic="a row something refuses to settle")
    other_job = row(conn, other)["job_id"]
    conn.execute(
        "create function public.test_refuse() returns trigger language plpgsql as $$"
        " begin raise exception 'refused by a test trigger'; end $$"
    )
    conn.execute(
        "create trigger test_refuse before update of status on public.scheduled_tweets"
        " for each row when (new.status = 'failed') execute function public.test_refuse()"
    )
    [claimed] = claim(conn, kinds=("generate_tweet",))
    assert claimed["id"] == other_job
    assert fail(conn, claimed, "boom", retryable=False) == "dead"  # the job's update went through
    assert job(conn, other_job)["status"] == "dead"
    assert row(conn, other)["status"] == "pending"
    [alert] = open_alerts(conn, "scheduled_tweet_stranded")
    assert alert["dedupe_key"] == f"scheduled_tweet_stranded:{other}"
    assert alert["level"] == "critical"
    assert alert["message"] == (
        f"scheduled_tweets row {other} could not be settled after its generate_tweet job"
        f" {other_job} ended dead: refused by a test trigger"
    )

    conn.execute("drop trigger test_refuse on public.scheduled_tweets")
    assert scalar(conn, "select public.settle_stranded_scheduled_tweets()") == 1
    assert row(conn, other)["status"] == "failed"
    assert open_alerts(conn, "scheduled_tweet_stranded") == []


def test_the_sweep_settles_rows_stranded_before_the_trigger_existed(
    conn: psycopg.Connection, admin_dsn: str
) -> None:
    """What the migration does once, for rows its trigger never saw: the sweep, again."""
    generating = insert(conn, topic="stuck since last week")
    posting = insert(conn, content="stuck in posting")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("alter table public.jobs disable trigger jobs_settle_owned_row")
        try:
            for row_id, kind in ((generating, "generate_tweet"), (posting, "post_tweet")):
                job_id = row(conn, row_id)["job_id"]
                conn.execute("update public.jobs set max_attempts = 1 where id = %s", (job_id,))
                [claimed] = claim(conn, kinds=(kind,))
                yield_to_handler(conn, claimed)
                expire_lease(conn, job_id)
                assert scalar(conn, "select public.reap_expired_leases()") == 1
        finally:
            admin.execute("alter table public.jobs enable trigger jobs_settle_owned_row")
    assert {r[0] for r in conn.execute("select id from public.stranded_scheduled_tweets()")} == {
        generating,
        posting,
    }
    assert scalar(conn, "select public.settle_stranded_scheduled_tweets()") == 2
    assert row(conn, generating)["status"] == "failed"
    assert row(conn, posting)["status"] == "posting"
    assert _reconciler(conn, posting)["status"] == "queued"
    assert scalar(conn, "select public.settle_stranded_scheduled_tweets()") == 0


def test_settle_unposted_takes_only_its_two_outcomes(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="failed or cancelled"):
        conn.execute("select public.settle_unposted_post(1, 'posted', 'no')")


def test_rows_waiting_for_an_earlier_part_are_not_stranded(conn: psycopg.Connection) -> None:
    """A thread's later parts have no job yet: waiting, not left behind."""
    thread = insert(conn, thread=["first of two", "second of two"])
    assert scalar(conn, "select count(*) from public.stranded_scheduled_tweets()") == 0
    assert (
        scalar(conn, "select count(*) from public.scheduled_tweets where thread_of = %s", (thread,))
        == 2
    )


def test_a_payload_that_names_no_row_is_left_alone(conn: psycopg.Connection) -> None:
    job_id = enqueue(conn, "post_tweet", {"scheduled_tweet_id": 424242})
    [claimed] = claim(conn, kinds=("post_tweet",))
    assert claimed["id"] == job_id
    assert fail(conn, claimed, "scheduled_tweets row 424242 does not exist", retryable=False) == (
        "dead"
    )
    assert open_alerts(conn, "scheduled_tweet_stranded") == []
