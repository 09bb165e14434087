"""The Realtime stand-in, driven through the real supabase/realtime client and raw frames.

Each test gets its own gateway (its own temporary replication slot) on a database of this
module with stand-in `jobs`/`configs` tables in the `supabase_realtime` publication.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
import websockets
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates
from realtime.types import RealtimePostgresChangesListenEvent as PgEvent
from websockets.asyncio.client import ClientConnection

from sandbox.keys import ANON_KEY, SERVICE_ROLE_KEY, make_key
from sandbox.realtime import RealtimeState, binding_id, parse_filters
from supabase import AsyncClient, acreate_client
from tests import pg
from tests.realtime_db import scratch_realtime_db, serve_realtime

TIMEOUT = 5.0

EXTRA_SQL = """
create table public.secrets (id bigint generated always as identity primary key, note text);
alter table public.secrets enable row level security;
create table public.not_published (id bigint primary key);
alter publication supabase_realtime add table public.secrets;
insert into public.configs (key, value) values ('persona', '{"tone": "dry"}');
"""


@pytest.fixture(scope="module")
def rt_db() -> Iterator[str]:
    """A database of stand-in tables for this module (dropped at the end)."""
    with scratch_realtime_db("chirpbase_rt", EXTRA_SQL) as name:
        yield name


@pytest.fixture
async def server(rt_db: str) -> AsyncIterator[tuple[str, RealtimeState]]:
    async with serve_realtime(rt_db) as s:
        yield s


@pytest.fixture
async def writer(rt_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection as `postgres` (the role migrations and the worker use)."""
    conn = await psycopg.AsyncConnection.connect(pg.app_dsn(rt_db), autocommit=True)
    yield conn
    await conn.close()


@contextlib.asynccontextmanager
async def supabase(url: str, key: str = SERVICE_ROLE_KEY) -> AsyncIterator[AsyncClient]:
    client = await acreate_client(url, key)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.realtime.close(), 2)
        await client.auth.close()


async def subscribed(channel: Any) -> asyncio.Queue[Any]:
    """Subscribe; wait for SUBSCRIBED and the "Subscribed to PostgreSQL" system message."""
    system: asyncio.Queue[Any] = asyncio.Queue()
    states: asyncio.Queue[Any] = asyncio.Queue()
    channel.on_system(system.put_nowait)
    await channel.subscribe(lambda state, err: states.put_nowait((state, err)))
    state, err = await asyncio.wait_for(states.get(), TIMEOUT)
    assert state == RealtimeSubscribeStates.SUBSCRIBED, (state, err)
    msg = await asyncio.wait_for(system.get(), TIMEOUT)
    assert (msg.extension, msg.status, msg.message) == (
        "postgres_changes",
        "ok",
        "Subscribed to PostgreSQL",
    )
    return states


def ws_url(http_url: str, key: str | None = SERVICE_ROLE_KEY, vsn: str = "1.0.0") -> str:
    base = http_url.replace("http://", "ws://") + "/realtime/v1/websocket?vsn=" + vsn
    return base + (f"&apikey={key}" if key else "")


async def recv(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


# ---------------------------------------------------------------------------------------------


async def test_insert_into_jobs_reaches_the_client(
    server: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = server
    async with supabase(url) as client:
        events: asyncio.Queue[Any] = asyncio.Queue()
        channel = client.channel("doorbell")
        channel.on_postgres_changes(
            PgEvent.Insert, events.put_nowait, table="jobs", schema="public"
        )
        await subscribed(channel)

        await writer.execute(
            'insert into jobs (kind, payload) values (\'post_tweet\', \'{"text": "hi", "n": 2}\')'
        )
        payload = await asyncio.wait_for(events.get(), TIMEOUT)

    data = payload["data"]
    assert payload["ids"] == [channel.postgres_changes_callbacks[0].id]
    assert (data["schema"], data["table"], data["type"]) == ("public", "jobs", "INSERT")
    assert data["errors"] is None
    assert "old_record" not in data
    record = data["record"]
    assert isinstance(record["id"], int)
    assert record["kind"] == "post_tweet"
    assert record["payload"] == {"text": "hi", "n": 2}  # jsonb as an object, not a string
    assert record["status"] == "queued"
    # timestamptz as to_jsonb renders it, commit_timestamp as Realtime formats it
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", record["run_at"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["commit_timestamp"])
    assert {"name": "payload", "type": "jsonb"} in data["columns"]
    assert {"name": "id", "type": "int8"} in data["columns"]


async def test_update_on_configs_carries_old_and_new(
    server: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = server
    async with supabase(url) as client:
        events: asyncio.Queue[Any] = asyncio.Queue()
        channel = client.channel("configs")
        channel.on_postgres_changes(
            PgEvent.All, events.put_nowait, table="configs", schema="public"
        )
        await subscribed(channel)

        await writer.execute(
            "update configs set value = '{\"tone\": \"warm\"}' where key = 'persona'"
        )
        payload = await asyncio.wait_for(events.get(), TIMEOUT)
        await writer.execute("delete from configs where key = 'persona'")
        deleted = await asyncio.wait_for(events.get(), TIMEOUT)

    data = payload["data"]
    assert data["type"] == "UPDATE"
    assert data["record"]["key"] == "persona"
    assert data["record"]["value"] == {"tone": "warm"}
    assert data["old_record"] == {"id": data["record"]["id"]}  # replica identity: the pkey
    assert deleted["data"]["type"] == "DELETE"
    assert deleted["data"]["old_record"] == {"id": data["record"]["id"]}
    assert "record" not in deleted["data"]


async def test_filter_eq_only_delivers_matching_rows(
    server: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = server
    async with supabase(url) as client:
        wanted: asyncio.Queue[Any] = asyncio.Queue()
        everything: asyncio.Queue[Any] = asyncio.Queue()
        channel = client.channel("filtered")
        channel.on_postgres_changes(
            PgEvent.Insert,
            wanted.put_nowait,
            table="jobs",
            schema="public",
            filter="kind=eq.like_reply",
        )
        channel.on_postgres_changes(
            PgEvent.Insert, everything.put_nowait, table="jobs", schema="public"
        )
        await subscribed(channel)

        await writer.execute("insert into jobs (kind) values ('post_tweet')")
        await writer.execute("insert into jobs (kind) values ('like_reply')")
        # the unfiltered binding sees both, in commit order: a barrier with no sleeping
        first = await asyncio.wait_for(everything.get(), TIMEOUT)
        second = await asyncio.wait_for(everything.get(), TIMEOUT)

    assert [first["data"]["record"]["kind"], second["data"]["record"]["kind"]] == [
        "post_tweet",
        "like_reply",
    ]
    assert wanted.qsize() == 1
    match = wanted.get_nowait()
    assert match["data"]["record"]["kind"] == "like_reply"
    filtered_id, plain_id = (cb.id for cb in channel.postgres_changes_callbacks)
    assert set(match["ids"]) == {filtered_id, plain_id}
    assert first["ids"] == [plain_id]


def test_filter_parsing_matches_realtime() -> None:
    assert [
        (f.column, f.op, f.value, f.negate) for f in parse_filters("subject=in.(hidee,ho)")
    ] == [("subject", "in", "{hidee,ho}", False)]
    assert [(f.column, f.op, f.value, f.negate) for f in parse_filters("id=gt.0,id=lt.100")] == [
        ("id", "gt", "0", False),
        ("id", "lt", "100", False),
    ]
    assert parse_filters("  ") == ()
    assert parse_filters("subject=not.like.hey%")[0].negate is True


async def test_bad_or_missing_apikey_is_refused_at_the_handshake(
    server: tuple[str, RealtimeState],
) -> None:
    url, state = server
    forged = make_key("service_role", secret="not-the-sandbox-secret")
    for key, message in [
        (forged, "Failed to validate JWT signature"),
        ("not-a-jwt", "The token provided is not a valid JWT"),
        (make_key("service_role", ttl_s=-10), "Token has expired"),
        (None, "API key is missing"),
    ]:
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with websockets.connect(ws_url(url, key)):
                pass
        assert info.value.response.status_code == 401
        assert json.loads(info.value.response.body or b"{}") == {"error": message}

    # the realtime client surfaces it as a failed connect
    client = AsyncRealtimeClient(url + "/realtime/v1", token=forged, auto_reconnect=False)
    with pytest.raises(websockets.exceptions.InvalidStatus):
        await client.connect()
    assert state.handshakes == 0
    assert state.rejected_handshakes == 5


async def test_join_reply_assigns_binding_ids_the_client_accepts(
    server: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = server
    bindings = [
        {"event": "INSERT", "schema": "public", "table": "jobs"},
        {"event": "*", "schema": "public", "table": "configs"},
        {"event": "INSERT", "schema": "public", "table": "jobs", "filter": "kind=eq.x"},
    ]
    async with websockets.connect(ws_url(url)) as ws:
        await ws.send(
            json.dumps(
                {
                    "topic": "realtime:ids",
                    "event": "phx_join",
                    "payload": {"config": {"postgres_changes": bindings}},
                    "ref": "1",
                    "join_ref": "1",
                }
            )
        )
        reply = await recv(ws)
        assert set(reply) == {"event", "payload", "ref", "topic"}  # V1: no join_ref
        assert (reply["event"], reply["ref"], reply["topic"]) == ("phx_reply", "1", "realtime:ids")
        assert reply["payload"]["status"] == "ok"
        echoed = reply["payload"]["response"]["postgres_changes"]
        assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == bindings
        ids = [b["id"] for b in echoed]
        assert all(isinstance(i, int) and i > 0 for i in ids)
        assert len(set(ids)) == 3
        assert ids == [binding_id(b) for b in bindings]  # stable: same params, same id
        system = await recv(ws)
        assert system == {
            "event": "system",
            "payload": {
                "channel": "ids",
                "extension": "postgres_changes",
                "message": "Subscribed to PostgreSQL",
                "status": "ok",
            },
            "ref": None,
            "topic": "realtime:ids",
        }
        await writer.execute("insert into jobs (kind) values ('y')")
        event = await recv(ws)
        assert event["event"] == "postgres_changes"
        assert event["ref"] is None
        assert event["payload"]["ids"] == [ids[0]]  # not the kind=eq.x binding

    # and through the client: its binding check passes and it adopts the server's ids
    async with supabase(url) as client:
        channel = client.channel("ids")
        channel.on_postgres_changes(PgEvent.Insert, lambda p: None, table="jobs", schema="public")
        channel.on_postgres_changes(PgEvent.All, lambda p: None, table="configs", schema="public")
        await subscribed(channel)
        assert [cb.id for cb in channel.postgres_changes_callbacks] == ids[:2]


async def test_heartbeat_leave_and_unmatched_topics(server: tuple[str, RealtimeState]) -> None:
    url, _state = server
    async with websockets.connect(ws_url(url)) as ws:
        await ws.send(
            json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "7"})
        )
        assert await recv(ws) == {
            "event": "phx_reply",
            "payload": {"response": {}, "status": "ok"},
            "ref": "7",
            "topic": "phoenix",
        }
        # what supabase-py sends: ref null
        await ws.send(
            json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": None})
        )
        assert (await recv(ws))["payload"] == {"response": {}, "status": "ok"}

        await ws.send(
            json.dumps({"topic": "realtime:x", "event": "broadcast", "payload": {}, "ref": "8"})
        )
        assert (await recv(ws))["payload"] == {
            "status": "error",
            "response": {"reason": "unmatched topic"},
        }

        join = {"topic": "realtime:x", "event": "phx_join", "payload": {"config": {}}}
        await ws.send(json.dumps({**join, "ref": "9", "join_ref": "9"}))
        joined = await recv(ws)
        assert joined["payload"] == {"status": "ok", "response": {"postgres_changes": []}}
        await ws.send(
            json.dumps(
                {
                    "topic": "realtime:x",
                    "event": "phx_leave",
                    "payload": {},
                    "ref": "10",
                    "join_ref": "9",
                }
            )
        )
        assert (await recv(ws))["payload"] == {"status": "ok", "response": {}}
        assert await recv(ws) == {
            "event": "phx_close",
            "payload": {},
            "ref": "9",
            "topic": "realtime:x",
        }


async def test_vsn2_array_frames(server: tuple[str, RealtimeState]) -> None:
    url, _state = server
    async with websockets.connect(ws_url(url, vsn="2.0.0")) as ws:
        bindings = [{"event": "*", "schema": "public", "table": "configs"}]
        await ws.send(
            json.dumps(
                ["3", "3", "realtime:v2", "phx_join", {"config": {"postgres_changes": bindings}}]
            )
        )
        join_ref, ref, topic, event, payload = await recv(ws)
        assert (join_ref, ref, topic, event) == ("3", "3", "realtime:v2", "phx_reply")
        assert payload["response"]["postgres_changes"][0]["id"] == binding_id(bindings[0])


async def test_rls_hides_rows_from_anon_but_not_from_service_role(
    server: tuple[str, RealtimeState], writer: psycopg.AsyncConnection[Any]
) -> None:
    url, _state = server
    async with supabase(url, SERVICE_ROLE_KEY) as service, supabase(url, ANON_KEY) as anon:
        seen_by_service: asyncio.Queue[Any] = asyncio.Queue()
        seen_by_anon: asyncio.Queue[Any] = asyncio.Queue()
        ch_service = service.channel("s")
        ch_service.on_postgres_changes(
            PgEvent.Insert, seen_by_service.put_nowait, table="secrets", schema="public"
        )
        await subscribed(ch_service)
        ch_anon = anon.channel("a")
        ch_anon.on_postgres_changes(
            PgEvent.Insert, seen_by_anon.put_nowait, table="secrets", schema="public"
        )
        ch_anon.on_postgres_changes(
            PgEvent.Insert, seen_by_anon.put_nowait, table="jobs", schema="public"
        )
        await subscribed(ch_anon)

        await writer.execute("insert into secrets (note) values ('only for the service role')")
        await writer.execute("insert into jobs (kind) values ('visible')")  # no RLS on jobs
        secret = await asyncio.wait_for(seen_by_service.get(), TIMEOUT)
        first_for_anon = await asyncio.wait_for(seen_by_anon.get(), TIMEOUT)

        # a policy that lets anon read some rows: those (and only those) reach anon
        await writer.execute(
            "create policy anon_reads_public on secrets for select to anon"
            " using (note like 'public%')"
        )
        try:
            await writer.execute("insert into secrets (note) values ('private again')")
            await writer.execute("insert into secrets (note) values ('public note')")
            allowed = await asyncio.wait_for(seen_by_anon.get(), TIMEOUT)
        finally:
            await writer.execute("drop policy anon_reads_public on secrets")

    assert secret["data"]["record"]["note"] == "only for the service role"
    # changes are dispatched in commit order: had anon been allowed the secret, it came first
    assert first_for_anon["data"]["table"] == "jobs"
    assert (allowed["data"]["table"], allowed["data"]["record"]["note"]) == (
        "secrets",
        "public note",
    )


async def test_unknown_table_gets_a_system_error(server: tuple[str, RealtimeState]) -> None:
    url, _state = server
    async with supabase(url) as client:
        states: asyncio.Queue[Any] = asyncio.Queue()
        channel = client.channel("bad")
        channel.on_postgres_changes(
            PgEvent.Insert, lambda p: None, table="not_published", schema="public"
        )
        await channel.subscribe(lambda state, err: states.put_nowait((state, err)))
        assert (await asyncio.wait_for(states.get(), TIMEOUT))[
            0
        ] == RealtimeSubscribeStates.SUBSCRIBED
        state, err = await asyncio.wait_for(states.get(), TIMEOUT)
    assert state == RealtimeSubscribeStates.CHANNEL_ERROR
    assert "Unable to subscribe to changes with given parameters" in str(err)


async def test_feed_survives_losing_its_database_session(
    rt_db: str, writer: psycopg.AsyncConnection[Any]
) -> None:
    async with serve_realtime(rt_db) as (url, state), supabase(url) as client:
        events: asyncio.Queue[Any] = asyncio.Queue()
        system: asyncio.Queue[Any] = asyncio.Queue()
        channel = client.channel("survivor")
        channel.on_postgres_changes(
            PgEvent.Insert, events.put_nowait, table="jobs", schema="public"
        )
        await subscribed(channel)
        channel.on_system(system.put_nowait)
        old_slot = state.feed.slot

        async with await psycopg.AsyncConnection.connect(
            pg.admin_dsn(rt_db), autocommit=True
        ) as admin:
            killed = await (
                await admin.execute(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                    " where datname = current_database() and application_name = 'chirpbase_realtime'"
                )
            ).fetchone()
            assert killed == (1,)
            # the channel is told again that it is subscribed once the feed is back
            msg = await asyncio.wait_for(system.get(), TIMEOUT)
            assert msg.message == "Subscribed to PostgreSQL"
            assert state.feed.healthy
            slots = await (
                await admin.execute(
                    "select slot_name, temporary from pg_replication_slots"
                    " where database = current_database()"
                )
            ).fetchall()
            assert slots == [(old_slot, True)]  # recreated, still temporary

        await writer.execute("insert into jobs (kind) values ('after_restart')")
        payload = await asyncio.wait_for(events.get(), TIMEOUT)
        assert payload["data"]["record"]["kind"] == "after_restart"


async def test_slot_is_temporary_and_gone_after_shutdown(rt_db: str) -> None:
    async def slots() -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(
            pg.admin_dsn(rt_db), autocommit=True
        ) as admin:
            return await (
                await admin.execute(
                    "select slot_name, temporary from pg_replication_slots"
                    " where database = current_database()"
                )
            ).fetchall()

    async with serve_realtime(rt_db) as (_url, state):
        assert await slots() == [(state.feed.slot, True)]

    # dropped on shutdown (and a temporary slot could not outlive its session anyway)
    async with asyncio.timeout(TIMEOUT):
        while await slots():
            await asyncio.sleep(0.01)
