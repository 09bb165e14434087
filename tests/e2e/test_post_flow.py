"""A scheduled row becomes exactly one tweet on the X stand-in, with rows written back."""

from __future__ import annotations

import psycopg

from sandbox.stack import SandboxStack
from tests.waiting import wait_for
from tests.workers import running
from worker.runtime.worker import Worker


async def test_scheduled_text_is_posted_once(
    stack: SandboxStack, conn: psycopg.Connection, dsn: str
) -> None:
    row_id = conn.execute(
        "insert into public.scheduled_tweets (content) values ('Hello from the sandbox 👋') returning id"
    ).fetchone()[0]
    async with running(Worker(stack.settings(dsn))):
        status = await wait_for(
            lambda: conn.execute(
                "select status from public.scheduled_tweets where id = %s and status = 'posted'",
                (row_id,),
            ).fetchone(),
            timeout=15,
        )
    assert status == ("posted",)
    posted = stack.x.posted_tweets()
    assert [t.text for t in posted] == ["Hello from the sandbox 👋"]
    tweet_id, content = conn.execute("select tweet_id, content from public.tweets").fetchone()
    assert tweet_id == posted[0].id and content == posted[0].text
