"""Connections and channels: a websocket `Connection` with its joined `Channel`s, and `_Control`,
the stand-in's own database connection that resolves bindings against the publication at
subscribe time (like `realtime.subscription` rows) and applies the subscriber's role: column
privileges and RLS, checked by primary key as `realtime.apply_rls` does. Subscribing a channel
resolves its bindings, then pushes the `system` message ("Subscribed to PostgreSQL", or the
error), retrying with backoff while the database is away, as Realtime does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from aiohttp import web
from loguru import logger
from psycopg import sql

from sandbox.realtime.feed import PUBLICATION
from sandbox.realtime.subscriptions import PgBinding, SubscriptionError, _describe

if TYPE_CHECKING:
    from sandbox.realtime.state import RealtimeState


SUBSCRIBED_MESSAGE = "Subscribed to PostgreSQL"


@dataclass(eq=False)
class Channel:
    topic: str
    join_ref: str | None
    conn: Connection
    claims: dict[str, Any]
    access_token: str
    bindings: list[PgBinding]
    broadcast_self: bool = False
    broadcast_ack: bool = False
    subscribed: bool = False
    closed: bool = False
    subscribe_task: asyncio.Task[None] | None = None

    @property
    def sub_topic(self) -> str:
        return self.topic.removeprefix("realtime:")

    @property
    def role(self) -> str:
        return str(self.claims.get("role", "anon"))


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    request: web.Request
    vsn: str
    token: str
    claims: dict[str, Any]
    channels: dict[str, Channel] = field(default_factory=dict)
    outbox: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(10_000))
    closed: bool = False

    def push(
        self,
        topic: str,
        event: str,
        payload: Any,
        ref: str | None = None,
        join_ref: str | None = None,
    ) -> None:
        if self.closed:
            return
        if self.vsn.startswith("2."):
            frame = json.dumps([join_ref, ref, topic, event, payload], separators=(",", ":"))
        else:  # Phoenix.Socket.V1.JSONSerializer: no join_ref in anything the server sends
            frame = json.dumps(
                {"event": event, "payload": payload, "ref": ref, "topic": topic},
                separators=(",", ":"),
            )
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            logger.warning("realtime: client too slow, dropping its connection")
            self.abort()

    def reply(
        self, topic: str, ref: str | None, status: str, response: Any, join_ref: str | None = None
    ) -> None:
        self.push(topic, "phx_reply", {"status": status, "response": response}, ref, join_ref)

    def abort(self) -> None:
        """Drop the TCP connection with no close frame (a crash, a cable pulled)."""
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)


@dataclass
class _TableAccess:
    bypass_rls: bool
    selectable: frozenset[str]
    expires: float


class _Control:
    """A side connection for subscribe-time catalog queries and per-role RLS checks."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._access: dict[tuple[str, int], _TableAccess] = {}

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=5,
                application_name="chirpbase_realtime_control",
                options="-c TimeZone=UTC",
            )
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def resolve(self, binding: PgBinding, role: str) -> frozenset[int]:
        """The publication tables a binding covers; SubscriptionError if none or bad filter."""
        async with self._lock:
            conn = await self._connection()
            rows = await (
                await conn.execute(
                    """
                    select format('%%I.%%I', t.schemaname, t.tablename)::regclass::oid
                      from pg_catalog.pg_publication_tables t
                     where t.pubname = %s
                       and t.schemaname like (case %s when '*' then '%%' else %s end) escape ''
                       and t.tablename like (case %s when '*' then '%%' else %s end) escape ''
                    """,
                    (PUBLICATION, binding.schema, binding.schema, binding.table, binding.table),
                )
            ).fetchall()
            relids = frozenset(int(r[0]) for r in rows)
            if not relids:
                raise SubscriptionError(
                    "Unable to subscribe to changes with given parameters. Please check Realtime "
                    f"is enabled for the given connect parameters: {_describe(binding)}"
                )
            needed = {f.column for f in binding.filters} | set(binding.select or ())
            for relid in relids:
                access = await self._load_access(conn, role, relid)
                missing = sorted(needed - access.selectable)
                if missing:
                    filter_cols = {f.column for f in binding.filters}
                    what = "filter" if missing[0] in filter_cols else "select"
                    raise SubscriptionError(
                        "Unable to subscribe to changes with given parameters. An exception "
                        "happened so please check your connect parameters: "
                        f"{_describe(binding)}. Exception: ERROR P0001 (raise_exception) "
                        f"invalid column for {what} {missing[0]}"
                    )
            return relids

    async def _load_access(
        self, conn: psycopg.AsyncConnection[Any], role: str, relid: int
    ) -> _TableAccess:
        row = await (
            await conn.execute(
                """
                select coalesce((select r.rolbypassrls or r.rolsuper
                                   from pg_catalog.pg_roles r where r.rolname = %(role)s), false),
                       coalesce(array_agg(a.attname::text) filter (
                         where pg_catalog.has_column_privilege(%(role)s, a.attrelid, a.attnum,
                                                               'SELECT')), '{}')
                  from pg_catalog.pg_attribute a
                 where a.attrelid = %(relid)s and a.attnum > 0 and not a.attisdropped
                   and exists (select 1 from pg_catalog.pg_roles r where r.rolname = %(role)s)
                """,
                {"role": role, "relid": relid},
            )
        ).fetchone()
        bypass, cols = (bool(row[0]), list(row[1] or [])) if row else (False, [])
        access = _TableAccess(bypass, frozenset(cols), time.monotonic() + 5.0)
        self._access[(role, relid)] = access
        return access

    async def access(self, role: str, relid: int) -> _TableAccess:
        cached = self._access.get((role, relid))
        if cached is not None and cached.expires > time.monotonic():
            return cached
        async with self._lock:
            conn = await self._connection()
            return await self._load_access(conn, role, relid)

    async def row_visible(
        self, role: str, claims: Mapping[str, Any], relid: int, pk: Mapping[str, Any]
    ) -> bool:
        """Whether `role` (with `claims`) sees the row with primary key `pk` under RLS."""
        if not pk:
            return False
        async with self._lock:
            conn = await self._connection()
            try:
                async with conn.transaction():
                    name = await (
                        await conn.execute("select %s::oid::regclass::text", (relid,))
                    ).fetchone()
                    if name is None:
                        return False
                    where = sql.SQL(" and ").join(
                        # an untyped literal takes the column's type, so the pkey index is used
                        sql.SQL("{} = {}").format(sql.Identifier(col), sql.Literal(_pk_text(v)))
                        for col, v in pk.items()
                    )
                    await conn.execute(
                        sql.SQL("select set_config('role', {}, true)").format(sql.Literal(role))
                    )
                    await conn.execute(
                        "select set_config('request.jwt.claims', %s, true)",
                        (json.dumps(dict(claims)),),
                    )
                    stmt = sql.SQL("select exists(select 1 from {} where {})").format(
                        sql.SQL(name[0]), where
                    )
                    row = await (await conn.execute(stmt)).fetchone()
                    return bool(row and row[0])
            except psycopg.Error as exc:
                logger.debug("realtime: RLS check failed for role {}: {}", role, exc)
                return False


def _pk_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _start_subscribe(state: RealtimeState, ch: Channel, *, delay: float) -> None:
    if ch.subscribe_task is not None and not ch.subscribe_task.done():
        ch.subscribe_task.cancel()
    ch.subscribe_task = asyncio.create_task(_subscribe(state, ch, delay))


async def _subscribe(state: RealtimeState, ch: Channel, delay: float) -> None:
    """Resolve the channel's bindings against the database, then push the system message."""
    if delay:
        await asyncio.sleep(delay)
    attempt = 0
    while not ch.closed and not ch.conn.closed:
        try:
            for b in ch.bindings:
                b.relids = await state.control.resolve(b, ch.role)
        except SubscriptionError as exc:
            ch.subscribed = False
            _push_system(ch, "postgres_changes", "error", str(exc))
            return  # no point retrying malformed or unknown parameters
        except Exception as exc:
            if not isinstance(exc, psycopg.Error | OSError):
                logger.exception("realtime: subscribing channel {} failed", ch.topic)
            ch.subscribed = False
            await state.control.close()
            _push_system(ch, "postgres_changes", "error", f"{type(exc).__name__}: {exc}".strip())
            attempt += 1
            await asyncio.sleep(min(10.0, 1.0 * attempt) * random.uniform(0.5, 1.0))
            continue
        ch.subscribed = True
        state.feed.wake()
        _push_system(ch, "postgres_changes", "ok", SUBSCRIBED_MESSAGE)
        return


def _push_system(ch: Channel, extension: str, status: str, message: str) -> None:
    ch.conn.push(
        ch.topic,
        "system",
        {"extension": extension, "status": status, "message": message, "channel": ch.sub_topic},
        None,
        ch.join_ref,
    )
