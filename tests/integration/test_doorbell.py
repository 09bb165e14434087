"""The worker's Realtime doorbell against the Realtime stand-in and a real database.

Rings on inserts and config changes, re-subscribes by itself after the server drops or closes
its connection or goes away for a while (ringing "*" each time so the worker re-polls), and
delivers quickly: insert→ring latency is measured over 200 inserts.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from sandbox.keys import SERVICE_ROLE_KEY
from sandbox.realtime import RealtimeState
from tests import pg
from tests.realtime_db import scratch_realtime_db, serve_realtime
from tests.waiting import wait_for
from worker.runtime.doorbell import Doorbell

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def bell_db() -> Iterator[str]:
    seed = "insert into public.configs (key, value) values ('schedule', '{\"every_minutes\": 60}');"
    with scratch_realtime_db("chirpbase_bell", seed) as name:
        yield name


@pytest.fixture
async def gateway(bell_db: str) -> AsyncIterator[tuple[str, RealtimeState]]:
    async with serve_realtime(bell_db) as served:
        yield served


@pytest.fixture
async def writer(bell_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await psycopg.AsyncConnection.connect(pg.app_dsn(bell_db), autocommit=True)
    yield conn
    await conn.close()


class Rings:
    """A plain (sync) on_ring callback that hands every ring to a queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[float, str, dict[str, Any]]] = asyncio.Queue()

    def __call__(self, table: str, record: dict[str, Any]) -> None:
        self.queue.put_nowait((time.perf_counter(), table, record))

    async def next(self, table: str | None = None) -> tuple[float, str, dict[str, Any]]:
        """The next ring (for `table`, skipping others)."""
        while True:
            ring = await asyncio.wait_for(self.queue.get(), TIMEOUT)
            if table is None or ring[1] == table:
                return ring


@contextlib.asynccontextmanager
async def running(bell: Doorbell) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(bell.run())
    try:
        yield task
    finally:
        await asyncio.wait_for(bell.stop(), TIMEOUT)
        await asyncio.wait_for(task, TIMEOUT)


def make_bell(url: str, rings: Rings) -> Doorbell:
    return Doorbell(
        url,
        SERVICE_ROLE_KEY,
        rings,
        backoff_initial=0.05,
        backoff_max=0.4,
        check_interval=0.1,
    )


async def subscribed(bell: Doorbell, rings: Rings, sessions: int) -> None:
    """Wait for the doorbell's `sessions`-th subscribe and for its database confirmation."""
    await wait_for(lambda: bell.connected and bell.sessions >= sessions, timeout=TIMEOUT)
    # "*" on SUBSCRIBED, and again on the server's "Subscribed to PostgreSQL"
    await rings.next("*")
    await rings.next("*")


# ---------------------------------------------------------------------------------------------


async def test_rings_on_job_insert_and_config_change(
    gateway: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = gateway
    rings = Rings()
    bell = make_bell(url, rings)
    assert not bell.connected and bell.down_since is not None
    async with running(bell):
        await subscribed(bell, rings, 1)
        assert bell.down_since is None

        await writer.execute("insert into jobs (kind, payload) values ('post_tweet', '{\"a\": 1}')")
        _, table, record = await rings.next()
        assert table == "jobs"
        assert record["kind"] == "post_tweet"
        assert record["payload"] == {"a": 1}

        await writer.execute("update configs set value = '{\"every_minutes\": 5}'")
        _, table, record = await rings.next()
        assert table == "configs"
        assert (record["key"], record["value"]) == ("schedule", {"every_minutes": 5})

        # jobs UPDATEs are not subscribed to: the next ring is the following insert
        await writer.execute("update jobs set status = 'running'")
        await writer.execute("insert into jobs (kind) values ('collect_stats')")
        _, table, record = await rings.next()
        assert (table, record["kind"]) == ("jobs", "collect_stats")
    assert not bell.connected


async def test_reconnects_after_connections_are_dropped_or_closed(
    gateway: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, state = gateway
    rings = Rings()
    bell = make_bell(url, rings)
    async with running(bell):
        await subscribed(bell, rings, 1)

        assert state.drop_connections() == 1  # abrupt: no close frame
        await wait_for(lambda: not bell.connected, timeout=TIMEOUT, message="drop noticed")
        assert bell.down_since is not None
        await subscribed(bell, rings, 2)

        assert await state.close_connections(1000) == 1  # clean close: the client won't retry
        await subscribed(bell, rings, 3)

        await writer.execute("insert into jobs (kind) values ('poll_mentions')")
        _, _, record = await rings.next("jobs")
        assert record["kind"] == "poll_mentions"
        assert state.handshakes == 3


async def test_reconnects_after_the_server_was_away_for_a_while(
    gateway: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, state = gateway
    rings = Rings()
    bell = make_bell(url, rings)
    async with running(bell):
        await subscribed(bell, rings, 1)

        state.stop_accepting()  # drops the connection and refuses new ones
        await wait_for(lambda: not bell.connected, timeout=TIMEOUT)
        down_since = bell.down_since
        assert down_since is not None
        # it keeps trying, backing off, while the server is away
        await wait_for(lambda: state.rejected_handshakes >= 3, timeout=TIMEOUT)
        assert not bell.connected and bell.down_since == down_since

        state.start_accepting()
        await subscribed(bell, rings, 2)
        assert bell.down_since is None

        await writer.execute("insert into jobs (kind) values ('generate_tweet')")
        _, _, record = await rings.next("jobs")
        assert record["kind"] == "generate_tweet"


async def test_a_raising_callback_does_not_deafen_the_doorbell(
    gateway: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = gateway
    rings = Rings()

    def on_ring(table: str, record: dict[str, Any]) -> None:
        if record.get("kind") == "boom":
            raise RuntimeError("handler bug")
        rings(table, record)

    bell = Doorbell(url, SERVICE_ROLE_KEY, on_ring, backoff_initial=0.05, check_interval=0.1)
    async with running(bell):
        await subscribed(bell, rings, 1)
        await writer.execute("insert into jobs (kind) values ('boom')")
        await writer.execute("insert into jobs (kind) values ('after')")
        _, _, record = await rings.next("jobs")
        assert record["kind"] == "after"
        assert bell.sessions == 1  # same session: the client's listen task survived


async def test_insert_to_ring_latency(
    gateway: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = gateway
    rings = Rings()
    bell = make_bell(url, rings)
    latencies: list[float] = []
    async with running(bell):
        await subscribed(bell, rings, 1)
        for i in range(200):
            start = time.perf_counter()
            await writer.execute(
                "insert into jobs (kind, payload) values ('bench', %s)", (f'{{"i": {i}}}',)
            )
            rang_at, table, record = await rings.next()
            assert (table, record["payload"]) == ("jobs", {"i": i})
            latencies.append((rang_at - start) * 1000)

    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\ninsert->ring latency over {len(latencies)} inserts: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
    )
    assert p50 < 50
    assert p99 < 200
