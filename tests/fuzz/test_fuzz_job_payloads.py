"""Fuzz job payloads through the real worker: every job ends `dead` with "invalid <kind> payload"
or runs its handler; the worker never crashes or loops, and keeps serving afterwards.

Hypothesis generates payloads for every registered kind (from each kind's pydantic model:
plausible values, boundaries, wrong types, nulls, junk, huge arrays and strings, nesting deeper
than Python's json can read, unknown fields, non-objects) and a few unknown kinds. Each goes
through `enqueue_job`, which refuses non-objects and unknown kinds with a clear error. Then one
Worker, wired to the X and OpenAI stand-ins, claims the whole batch. For each job the expected
verdict comes from the kind's payload model applied to the payload as the worker loads it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from loguru import logger
from pydantic import ValidationError

from sandbox.stack import SandboxStack
from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import Deep, json_values, model_documents, to_json
from tests.waiting import wait_for
from worker import jobs
from worker.db import configure_json
from worker.jobs.noop import NoopPayload
from worker.runtime.worker import Worker

pytestmark = pytest.mark.timeout(150)

REGISTRY = jobs.load_all()
KINDS = sorted(REGISTRY)
HANDLED = (
    "status in ('succeeded', 'dead', 'cancelled') or (status = 'queued' and last_error is not null)"
)


def _quick_noop(doc: Any) -> Any:
    """A valid noop must not sleep for minutes: the batch has to finish in bounded time."""
    try:
        payload = NoopPayload.model_validate(doc)
    except ValidationError:
        return doc
    if payload.duration_s > 0.2:
        doc = {**doc, "duration_s": 0.05}
    return doc


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def _payloads(kind: str) -> st.SearchStrategy[Any]:
    docs = model_documents(REGISTRY[kind].payload_model)
    if kind == "noop":
        docs = docs.map(_quick_noop)
    return _weighted((6, docs), (1, st.dictionaries(st.text(max_size=8), json_values, max_size=4)))


job_case = _weighted(
    (12, st.sampled_from(KINDS).flatmap(lambda k: st.tuples(st.just(k), _payloads(k)))),
    (1, st.tuples(st.sampled_from(["nope", "", "NOOP", "noop ", "post_tweet'; --"]), json_values)),
)


@pytest.fixture
async def stack(admin_dsn: str) -> AsyncIterator[SandboxStack]:
    async with SandboxStack(admin_dsn) as s:
        yield s


def _enqueue_batch(conn: psycopg.Connection) -> tuple[dict[int, tuple[str, bool]], Counter[str]]:
    """Run the hypothesis examples: enqueue each case, predict its verdict."""
    expected: dict[int, tuple[str, bool]] = {}
    stats: Counter[str] = Counter()

    @FUZZ
    @given(case=job_case)
    @example(case=("noop", {"a": Deep(3000, as_object=True)}))
    @example(case=("post_tweet", {"scheduled_tweet_id": Deep(1500, as_object=False)}))
    @example(case=("like_reply", {"reply_id": "1" * 26}))
    @example(case=("post_tweet", {"scheduled_tweet_id": 2**70}))
    @example(case=("noop", []))
    @example(case=("nope", {}))
    def enqueue(case: tuple[str, Any]) -> None:
        kind, doc = case
        try:
            with conn.transaction():
                row = conn.execute(
                    "select public.enqueue_job(%s, %s::jsonb)", (kind, to_json(doc))
                ).fetchone()
        except psycopg.Error as exc:
            state, message = exc.sqlstate, exc.diag.message_primary or ""
            if state == "54001":
                assert "stack depth limit exceeded" in message
                stats["refused: nested beyond Postgres's limit"] += 1
                return
            if state == "22P05":  # jsonb cannot hold NUL (\u0000), like text
                assert message == "unsupported Unicode escape sequence" and "\\u0000" in to_json(
                    doc
                )
                stats["refused: NUL in JSON"] += 1
                return
            assert state == "22023", (state, message)
            # enqueue_job checks the payload's shape, then the kind (a trigger on jobs).
            if not isinstance(doc, dict):
                assert message.startswith("job payload must be a JSON object, got "), message
                stats["refused: payload not an object"] += 1
            elif "scheduled_tweet_id" in doc:
                assert message.startswith("job payload scheduled_tweet_id must be"), message
                stats["refused: scheduled_tweet_id not an id"] += 1
            else:
                assert kind not in KINDS, (kind, doc, message)
                assert message.startswith(f'unknown job kind "{kind}"'), message
                stats["refused: unknown kind"] += 1
            return
        assert kind in KINDS and isinstance(doc, dict), (kind, doc)
        assert row is not None
        job_id = int(row[0])
        stored = conn.execute("select payload from public.jobs where id = %s", (job_id,))
        loaded = stored.fetchone()
        assert loaded is not None
        try:
            REGISTRY[kind].payload_model.model_validate(loaded[0])
            valid = True
        except ValidationError:
            valid = False
        expected[job_id] = (kind, valid)
        stats["valid" if valid else "invalid"] += 1

    enqueue()
    return expected, stats


async def test_fuzz_job_payloads_through_the_claim_loop(
    stack: SandboxStack, dsn: str, conn: psycopg.Connection
) -> None:
    configure_json(conn)  # load payloads exactly as the worker does
    expected, stats = _enqueue_batch(conn)
    print(dict(stats))
    # Enough of each to mean something: about a quarter of the examples reach the worker invalid.
    assert stats["valid"] >= 50 and stats["invalid"] >= 120, stats
    assert stats["refused: payload not an object"] >= 5 and stats["refused: unknown kind"] >= 3
    ids = list(expected)

    problems: list[str] = []
    sink = logger.add(
        lambda m: problems.append(str(m)),
        level="WARNING",
        filter=lambda r: "claim failed" in r["message"] or "config reload failed" in r["message"],
    )
    worker = Worker(stack.settings(dsn, doorbell_enabled=False, poll_interval_s=0.5))
    task = asyncio.create_task(worker.run())
    started = time.monotonic()
    try:
        await asyncio.wait_for(worker.ready.wait(), 15)

        def pending() -> int:
            row = conn.execute(
                f"select count(*) from public.jobs where id = any(%s) and not ({HANDLED})", (ids,)
            ).fetchone()
            assert row is not None
            assert not task.done(), "the worker stopped"
            return int(row[0])

        await wait_for(lambda: pending() == 0, timeout=90, interval=0.1, message="batch handled")
        batch_s = time.monotonic() - started

        # Still serving: a normal job right after the fuzz batch runs at once.
        after = conn.execute("select public.enqueue_job('noop', '{}'::jsonb)").fetchone()
        assert after is not None
        await wait_for(
            lambda: (
                conn.execute(
                    "select status = 'succeeded' from public.jobs where id = %s", (after[0],)
                ).fetchone()
                == (True,)
            ),
            timeout=10,
            message="a normal job after the batch",
        )
        assert worker.loop.last_claim_ok and worker.loop.db_errors == 0
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        logger.remove(sink)
    assert problems == [], problems[:3]

    outcomes: Counter[str] = Counter()
    rows = conn.execute(
        "select id, status, attempts, max_attempts, last_error from public.jobs where id = any(%s)",
        (ids,),
    ).fetchall()
    assert len(rows) == len(ids)
    for job_id, status, attempts, max_attempts, last_error in rows:
        kind, valid = expected[job_id]
        marker = f"invalid {kind} payload: "
        if valid:
            assert not (last_error or "").startswith(marker), (job_id, kind, last_error)
            assert 0 <= attempts <= max_attempts
            outcomes[f"ran: {status}"] += 1
        else:
            assert (status, attempts) == ("dead", 1), (job_id, kind, status, attempts, last_error)
            assert last_error.startswith(marker), (job_id, kind, last_error)
            outcomes["dead: invalid payload"] += 1
    print(dict(outcomes), f"batch of {len(ids)} handled in {batch_s:.1f}s")
    assert outcomes["dead: invalid payload"] == stats["invalid"]
    assert batch_s < 60


async def test_a_payload_too_deep_for_python_with_the_doorbell_on(
    stack: SandboxStack, dsn: str, conn: psycopg.Connection
) -> None:
    """The Realtime path too: the INSERT event of a job nested thousands of levels deep reaches
    the doorbell (or breaks the stand-in's feed, which recovers); the job dies with a clear
    reason, and the next normal job is still rung in at once (the fallback poll is far away)."""
    worker = Worker(stack.settings(dsn, poll_interval_s=60), kinds=["noop"])
    task = asyncio.create_task(worker.run())

    def status(job_id: int) -> str:
        row = conn.execute("select status from public.jobs where id = %s", (job_id,)).fetchone()
        assert row is not None and not task.done()
        return str(row[0])

    try:
        await asyncio.wait_for(worker.ready.wait(), 15)
        await wait_for(lambda: worker.doorbell.connected, timeout=15, message="doorbell up")
        deep = to_json({"a": Deep(3000, as_object=False)})
        row = conn.execute("select public.enqueue_job('noop', %s::jsonb)", (deep,)).fetchone()
        assert row is not None
        await wait_for(lambda: status(row[0]) == "dead", timeout=20, message="deep job dead")
        error = conn.execute("select last_error from public.jobs where id = %s", (row[0],))
        assert str((error.fetchone() or [""])[0]).startswith("invalid noop payload: ")
        for _ in range(3):
            started = time.monotonic()
            after = conn.execute("select public.enqueue_job('noop', '{}')").fetchone()
            assert after is not None
            job_id = int(after[0])
            await wait_for(lambda j=job_id: status(j) == "succeeded", timeout=30)
            assert time.monotonic() - started < 5, "only the 60 s fallback poll found it"
        assert worker.loop.db_errors == 0
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
