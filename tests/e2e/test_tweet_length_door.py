"""What the database door lets through although X would refuse it, the worker refuses before
any call to X, with X's exact count in the row's error.

The door's count is a lower bound (tests/sql/test_tweet_length_door.py): on the boundary corpus
it accepts a number of texts that X counts over 280. Every one of them is inserted through the
real trigger here and run by a real worker against the X stand-in, which must see no request.
"""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from sandbox.stack import SandboxStack
from tests.e2e.test_x_post import running
from tests.sql.test_tweet_length_door import lower_bounds
from tests.tweet_text.corpus import boundary_corpus, exact_length
from tests.waiting import wait_for


async def test_every_text_the_door_lets_through_over_280_is_refused_before_x(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    corpus = boundary_corpus()
    texts = [case.text.strip() for case in corpus if case.text.strip()]
    bounds = lower_bounds(conn, texts)
    let_through = [
        text
        for text, bound in zip(texts, bounds, strict=True)
        if bound <= 280 < exact_length(text) and not any(c in text for c in "\ufeff\ufffe\uffff")
    ]
    assert len(let_through) > 100  # the door is a bound, not X's count: there are such texts

    with conn.cursor() as cur:  # the real door: every one of them is accepted
        cur.executemany(
            "insert into public.scheduled_tweets (content) values (%s)", [(t,) for t in let_through]
        )

    def unfinished() -> int:
        row = conn.execute(
            "select count(*) from public.jobs where kind = 'post_tweet'"
            " and status not in ('dead', 'failed', 'succeeded')"
        ).fetchone()
        assert row is not None
        return int(row[0])

    async with running(stack, dsn, poll_interval_s=0.2):
        await wait_for(lambda: unfinished() == 0, timeout=120, message="every post_tweet job done")

    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "select s.content, s.status, s.error, j.status as job_status"
            " from public.scheduled_tweets s join public.jobs j on j.id = s.job_id"
        ).fetchall()
    assert len(rows) == len(let_through)
    for row in rows:
        exact = exact_length(row["content"])
        assert (row["status"], row["job_status"]) == ("failed", "dead"), row
        assert f"weighted length {exact} > 280" in row["error"], row["error"]
    assert stack.x.request_count() == 0  # not one request reached X
    assert stack.x.posted_tweets() == []
