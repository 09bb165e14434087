"""A Supabase Realtime stand-in: Phoenix channels over a websocket, fed by logical decoding.

Speaks what supabase-py/realtime (and supabase-js) speak to a real Realtime server, for
`postgres_changes` (the doorbell) and plain public broadcast:

* `GET /websocket?apikey=<jwt>&vsn=1.0.0` (mounted by the gateway at `/realtime/v1/`). A missing or
  invalid key fails the handshake with an HTTP 401 and `{"error": "..."}`, as
  `RealtimeWeb.UserSocket.handle_error/2` does. `vsn=1.0.0` frames are JSON objects without
  `join_ref` (Phoenix's V1 serializer); `vsn=2.0.0` frames are arrays
  `[join_ref, ref, topic, event, payload]`.
* `phx_join` on `realtime:<name>` with `config.postgres_changes`: the reply echoes every binding
  with a server-assigned integer `id` (a hash of the binding, as `:erlang.phash2(params)` is), then
  the channel subscribes to the database and pushes the `system` message
  `{"extension": "postgres_changes", "status": "ok", "message": "Subscribed to PostgreSQL"}`
  (or `status: "error"` with the reason). Only tables in the `supabase_realtime` publication can
  be subscribed to, resolved at subscribe time, like `realtime.subscription` rows.
* `postgres_changes` events: `{"ids": [...], "data": {schema, table, commit_timestamp, type,
  columns, errors, record (INSERT/UPDATE), old_record (UPDATE/DELETE)}}` with values typed
  exactly as `realtime.cast` types them (`to_jsonb(value::type)`), `commit_timestamp` as
  `YYYY-MM-DDTHH:MM:SS.mmmZ`, columns as `{name, type: pg_type.typname}`, filters
  (`col=eq.value`, `neq/lt/lte/gt/gte/in/is/like/ilike/match/imatch/isdistinct`, `not.`, commas
  for AND), and the subscriber's role applied: column privileges, RLS (the row must be visible to
  the role, checked by primary key, as `realtime.apply_rls` does; DELETEs carry only the primary
  key when RLS is on).
* `heartbeat` on `phoenix`, `phx_leave` (reply, then `phx_close`), `access_token` (re-verifies,
  re-subscribes; a bad token gets a `system` error and the channel is closed), duplicate joins
  (the old channel gets `phx_close` after the new join's reply, as Phoenix does), messages to
  unjoined topics (`unmatched topic`), an idle timeout like Phoenix's (60 s without a frame).

Changes come from a temporary wal2json slot (format-version 2, timestamps, type oids, primary
keys) read with `pg_logical_slot_get_changes` in a tight async loop: the same SQL interface
Realtime's own `realtime.list_changes` polls, filtered to the publication's tables and actions.
A temporary slot belongs to its session, so it disappears with the connection whatever happens
(the stand-in also drops it on shutdown); if the database goes away the feed reconnects with
backoff, recreates the slot and channels re-subscribe (pushing "Subscribed to PostgreSQL" again,
as Realtime does after its poller recovers). Changes committed while the feed was down are lost,
as with Realtime: the tables are the truth.

Latency notes. Logical decoding only sees flushed WAL: on a cluster with `synchronous_commit =
off` (the local stack's setting) a commit becomes visible only when the WAL writer flushes it,
up to `wal_writer_delay` (200 ms) later. So before each poll, when there is unflushed WAL, the
feed forces a flush (a transactional logical message committed with `synchronous_commit = on`;
wal2json filters its prefix out). On hosted Supabase (`synchronous_commit = on`) this never
triggers. And each `pg_logical_slot_get_changes` call re-decodes WAL from the slot's
`restart_lsn`, which only moves at the ~15 s running-xacts records and never past the cluster's
oldest open transaction: on a busy shared cluster a poll can cost 100+ ms of server CPU. The
loop polls every `poll_interval` (4 ms) while someone is subscribed, every `idle_interval`
(250 ms, woken at once by a new subscription) otherwise, and always sleeps at least as long as
the last poll took, so one feed never uses more than about half a core.

Test hooks live on `RealtimeState` (`app[REALTIME_STATE]`): `drop_connections()` (abrupt,
no close frame), `close_connections(code)`, `stop_accepting()` / `start_accepting()`,
`wait_feed_ready()`, counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import psycopg
from aiohttp import WSMsgType, web
from loguru import logger
from psycopg import sql

__all__ = [
    "REALTIME_STATE",
    "ApiKeyVerifier",
    "RealtimeState",
    "create_realtime_app",
]

ApiKeyVerifier = Callable[[str], Mapping[str, object]]
"""Returns the claims of a valid key; raises (any exception) for an invalid one."""

PUBLICATION = "supabase_realtime"
FLUSH_PREFIX = "chirpbase_rt_flush"
PHOENIX_TOPIC = "phoenix"
SUBSCRIBED_MESSAGE = "Subscribed to PostgreSQL"
FILTER_OPS = (
    "eq",
    "neq",
    "lt",
    "lte",
    "gt",
    "gte",
    "in",
    "like",
    "ilike",
    "is",
    "match",
    "imatch",
    "isdistinct",
)

# Values are typed in SQL exactly as realtime.cast types them: to_jsonb(value::type). Shortcuts
# for types whose wal2json value already is what to_jsonb would give avoid a dynamic EXECUTE.
_SETUP_SQL = r"""
create or replace function pg_temp.chirpbase_rt_value(v jsonb, typ regtype) returns jsonb
language plpgsql stable as $fn$
declare
  res jsonb;
  txt text;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    return 'null'::jsonb;
  end if;
  if jsonb_typeof(v) in ('number', 'boolean') then
    return v;
  end if;
  txt := v #>> '{}';
  if typ in ('text'::regtype, 'character varying'::regtype, 'character'::regtype,
             'uuid'::regtype, 'name'::regtype, 'bytea'::regtype) then
    return to_jsonb(txt);
  end if;
  if typ in ('jsonb'::regtype, 'json'::regtype) then
    return txt::jsonb;
  end if;
  execute format('select to_jsonb(%L::%s)', txt, typ) into res;
  return res;
end
$fn$;

create or replace function pg_temp.chirpbase_rt_change(w jsonb) returns jsonb
language plpgsql stable as $fn$
declare
  act text := case w ->> 'action'
                when 'I' then 'INSERT' when 'U' then 'UPDATE' when 'D' then 'DELETE' end;
  rel oid;
  rls boolean;
  rec jsonb;
  old jsonb;
  cols jsonb;
  pk jsonb;
begin
  if act is null then
    return null;
  end if;
  rel := to_regclass(format('%I.%I', w ->> 'schema', w ->> 'table'));
  if rel is null then
    return null;
  end if;
  select c.relrowsecurity into rls from pg_catalog.pg_class c where c.oid = rel;
  select jsonb_object_agg(
           x ->> 'name',
           pg_temp.chirpbase_rt_value(
             x -> 'value',
             coalesce((x ->> 'typeoid')::oid::regtype, (x ->> 'type')::regtype)))
    into rec
    from jsonb_array_elements(coalesce(w -> 'columns', '[]'::jsonb)) x;
  select jsonb_object_agg(
           x ->> 'name',
           pg_temp.chirpbase_rt_value(
             x -> 'value',
             coalesce((x ->> 'typeoid')::oid::regtype, (x ->> 'type')::regtype)))
    into old
    from jsonb_array_elements(coalesce(w -> 'identity', '[]'::jsonb)) x;
  select coalesce(
           jsonb_agg(jsonb_build_object('name', a.attname, 'type', t.typname) order by a.attnum),
           '[]'::jsonb)
    into cols
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_type t on t.oid = a.atttypid
   where a.attrelid = rel and a.attnum > 0 and not a.attisdropped;
  select coalesce(jsonb_agg(x ->> 'name'), '[]'::jsonb)
    into pk
    from jsonb_array_elements(coalesce(w -> 'pk', '[]'::jsonb)) x;
  return jsonb_build_object(
    'relid', rel,
    'rls', coalesce(rls, false),
    'schema', w ->> 'schema',
    'table', w ->> 'table',
    'type', act,
    'commit_timestamp', to_char(
      ((w ->> 'timestamp')::timestamptz at time zone 'utc'), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'columns', cols,
    -- unchanged TOASTed values are absent from an UPDATE's columns: take them from identity
    'record', case when act <> 'DELETE'
                   then coalesce(old, '{}'::jsonb) || coalesce(rec, '{}'::jsonb) end,
    'old_record', coalesce(old, '{}'::jsonb),
    'pk', pk);
exception when others then
  return jsonb_build_object(
    'relid', rel, 'rls', coalesce(rls, false), 'schema', w ->> 'schema', 'table', w ->> 'table',
    'type', act, 'failed', sqlerrm);
end
$fn$;
"""

_POLL_SQL = r"""
select pg_temp.chirpbase_rt_change(x.data::jsonb)::text
from pg_logical_slot_get_changes(
  %(slot)s, null, %(max)s,
  'format-version', '2',
  'include-pk', 'true',
  'include-transaction', 'false',
  'include-timestamp', 'true',
  'include-type-oids', 'true',
  'filter-msg-prefixes', %(flush_prefix)s,
  'actions', (
    select coalesce(nullif(concat_ws(',',
             case when bool_or(p.pubinsert) then 'insert' end,
             case when bool_or(p.pubupdate) then 'update' end,
             case when bool_or(p.pubdelete) then 'delete' end), ''), 'insert')
      from pg_catalog.pg_publication p where p.pubname = %(pub)s),
  'add-tables', (
    select coalesce(nullif(string_agg(
             regexp_replace(t.schemaname, '([\\,.[:space:]])', '\\\1', 'g') || '.' ||
             regexp_replace(t.tablename, '([\\,.[:space:]])', '\\\1', 'g'), ','), ''),
           'pg_catalog.chirpbase_rt_no_table')
      from pg_catalog.pg_publication_tables t where t.pubname = %(pub)s)
) x
"""

_FLUSH_SQL = """
select case when pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn()
            then pg_logical_emit_message(true, %(flush_prefix)s, '') end,
       set_config('synchronous_commit', 'on', true)
"""


# --------------------------------------------------------------------------------------------
# Subscription parameters (ported from Extensions.PostgresCdcRls.Subscriptions)
# --------------------------------------------------------------------------------------------


class SubscriptionError(Exception):
    """A binding the server refuses; the message is what Realtime would push."""


@dataclass(frozen=True)
class PgFilter:
    column: str
    op: str
    value: str
    negate: bool


@dataclass
class PgBinding:
    """One `postgres_changes` entry of a join, with the id the server assigned to it."""

    id: int
    params: dict[str, Any]
    event: str
    schema: str
    table: str
    filters: tuple[PgFilter, ...]
    select: tuple[str, ...] | None
    relids: frozenset[int] = frozenset()


def binding_id(params: Mapping[str, Any]) -> int:
    """A stable non-zero integer per distinct binding (Realtime uses `:erlang.phash2(params)`).

    Non-zero matters: the Python client ignores events when its binding id is falsy.
    """
    digest = zlib.crc32(json.dumps(params, sort_keys=True, separators=(",", ":")).encode())
    return (digest & 0x7FFFFFF) or 1


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    prev = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i : i + 2])
                i += 2
                continue
            if ch == '"':
                quoted = False
            current.append(ch)
        elif ch == '"' and prev in (".", "(", ","):
            quoted = True
            current.append(ch)
        elif ch == "(":
            depth += 1
            current.append(ch)
        elif ch == ")":
            depth = max(0, depth - 1)
            current.append(ch)
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            ch = ""
        else:
            current.append(ch)
        prev = ch
        i += 1
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return value


def parse_filters(text: str) -> tuple[PgFilter, ...]:
    """Parse `col=op.value[,col=op.value...]` as Realtime does; raise SubscriptionError."""
    if not text.strip():
        return ()
    out: list[PgFilter] = []
    for segment in _split_top_level(text.strip()):
        seg = segment.strip()
        if not seg:
            raise SubscriptionError(
                "Error parsing `filter` params: filter must not contain empty segments "
                "(check for extra commas)"
            )
        if "=" not in seg:
            raise SubscriptionError(f'Error parsing `filter` params: ["{seg}"]')
        col, rest = seg.split("=", 1)
        negate = rest.startswith("not.")
        if negate:
            rest = rest[4:]
        if "." not in rest:
            raise SubscriptionError(f'Error parsing `filter` params: ["{rest}"]')
        op, value = rest.split(".", 1)
        if op not in FILTER_OPS:
            raise SubscriptionError(f'Error parsing `filter` params: ["{op}", "{value}"]')
        if op == "in":
            if not (len(value) >= 2 and value[0] == "(" and value[-1] == ")"):
                raise SubscriptionError(
                    "Error parsing `filter` params: `in` filter value must be wrapped by "
                    "parentheses"
                )
            value = "{" + value[1:-1] + "}"
        else:
            value = _unquote(value)
        out.append(PgFilter(col, op, value, negate))
    return tuple(out)


def parse_binding(params: Mapping[str, Any]) -> PgBinding:
    """Validate one `config.postgres_changes` entry (shape errors raise SubscriptionError)."""
    raw_event = params.get("event")
    event = "*"
    if isinstance(raw_event, str) and raw_event.upper() in ("INSERT", "UPDATE", "DELETE"):
        event = raw_event.upper()
    schema = params.get("schema")
    table = params.get("table")
    flt = params.get("filter")
    has_schema = isinstance(schema, str)
    has_table = isinstance(table, str)
    if has_schema and has_table and isinstance(flt, str):
        filters = parse_filters(flt)
    elif has_schema and has_table and "filter" not in params:
        filters = ()
    elif has_schema and "table" not in params and "filter" not in params:
        table, filters = "*", ()
    elif has_table and "schema" not in params and "filter" not in params:
        schema, filters = "public", ()
    else:
        raise SubscriptionError(
            "No subscription params provided. Please provide at least a `schema` or `table` "
            f"to subscribe to: {json.dumps(dict(params))}"
        )
    select: tuple[str, ...] | None = None
    raw_select = params.get("select")
    if isinstance(raw_select, str):
        raise SubscriptionError(
            "Error parsing `select` params: expected a list of column name strings, e.g. "
            'select: ["col1", "col2"]'
        )
    if isinstance(raw_select, list):
        cols = tuple(c for c in raw_select if isinstance(c, str))
        select = cols or None
    if select is not None and (schema == "*" or table == "*"):
        raise SubscriptionError(
            "Column selection is not supported for wildcard subscriptions. Provide an explicit "
            "schema and table name."
        )
    return PgBinding(
        id=binding_id(params),
        params=dict(params),
        event=event,
        schema=str(schema),
        table=str(table),
        filters=filters,
        select=select,
    )


def _describe(b: PgBinding) -> str:
    filters = [[f.column, f.op, f.value, f.negate] for f in b.filters]
    select = list(b.select) if b.select is not None else None
    return (
        f"[event: {json.dumps(b.event)}, schema: {json.dumps(b.schema)}, "
        f"table: {json.dumps(b.table)}, filters: {json.dumps(filters)}, "
        f"select: {json.dumps(select)}]"
    )


# --------------------------------------------------------------------------------------------
# Filter evaluation on typed values (realtime.check_equality_op casts both sides to the type)
# --------------------------------------------------------------------------------------------

_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


def _coerce(sample: Any, text: str) -> Any:
    """The filter literal `text` as the same kind of value as the column's `sample`."""
    if isinstance(sample, bool):
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(text)
    if isinstance(sample, int | float | Decimal):
        return Decimal(text.strip())
    if isinstance(sample, dict | list):
        return json.loads(text)
    return text


def _parse_pg_array(text: str) -> list[str]:
    inner = text.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    items: list[str] = []
    buf: list[str] = []
    quoted = False
    i = 0
    while i < len(inner):
        ch = inner[i]
        if quoted:
            if ch == "\\" and i + 1 < len(inner):
                buf.append(inner[i + 1])
                i += 2
                continue
            if ch == '"':
                quoted = False
            else:
                buf.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == ",":
            items.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    if buf or items:
        items.append("".join(buf).strip())
    return items


def _like_to_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


def _as_number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    return value


def filter_matches(flt: PgFilter, row: Mapping[str, Any]) -> bool:
    """Whether `row` passes `flt`; a missing column never passes (as in Realtime)."""
    if flt.column not in row:
        return False
    value = row[flt.column]
    try:
        if flt.op == "is":
            if flt.value == "null":
                res = value is None
            elif flt.value in ("true", "false"):
                res = value is (flt.value == "true")
            else:  # unknown
                res = value is None
            return res != flt.negate
        if flt.op == "isdistinct":
            other = None if value is None else _coerce(value, flt.value)
            res = _as_number(value) != other
            return res != flt.negate
        if value is None:
            return False  # SQL NULL compares to NULL: never true, negated or not
        if flt.op == "in":
            candidates = [_coerce(value, v) for v in _parse_pg_array(flt.value)]
            res = _as_number(value) in candidates
        elif flt.op in ("like", "ilike"):
            like_flags = re.IGNORECASE | re.DOTALL if flt.op == "ilike" else re.DOTALL
            res = re.fullmatch(_like_to_regex(flt.value), str(value), like_flags) is not None
        elif flt.op in ("match", "imatch"):
            res = (
                re.search(flt.value, str(value), re.IGNORECASE if flt.op == "imatch" else 0)
                is not None
            )
        else:
            left = _as_number(value)
            right = _coerce(value, flt.value)
            if flt.op == "eq":
                res = left == right
            elif flt.op == "neq":
                res = left != right
            elif flt.op == "lt":
                res = left < right
            elif flt.op == "lte":
                res = left <= right
            elif flt.op == "gt":
                res = left > right
            else:
                res = left >= right
    except (ValueError, TypeError, InvalidOperation, re.error):
        return False
    return res != flt.negate


# --------------------------------------------------------------------------------------------
# Connections and channels
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The change feed: wal2json through pg_logical_slot_get_changes
# --------------------------------------------------------------------------------------------


class ChangeFeed:
    """Reads a temporary wal2json slot in a loop and hands each change to `dispatch`."""

    def __init__(
        self,
        dsn: str,
        state: RealtimeState,
        *,
        poll_interval: float,
        idle_interval: float,
        max_changes: int,
        force_flush: bool,
    ) -> None:
        self.dsn = dsn
        self.state = state
        self.poll_interval = poll_interval
        self.idle_interval = idle_interval
        self.max_changes = max_changes
        self.force_flush = force_flush
        self.slot = f"chirpbase_rt_{os.getpid()}_{secrets.token_hex(4)}"
        self.ready = asyncio.Event()
        self.healthy = False
        self.polls = 0
        self.changes = 0
        self.last_poll_s = 0.0
        self._stopping = False
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Poll now (a channel just subscribed: leave the idle cadence at once)."""
        self._wake.set()

    async def run(self) -> None:
        attempt = 0
        failed_before = False
        while not self._stopping:
            polls_before = self.polls
            try:
                await self._open()
                if failed_before:
                    logger.info("realtime: change feed recovered (slot {})", self.slot)
                    self.state._feed_recovered()
                self.healthy = True
                self.ready.set()
                await self._loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stopping:
                    break
                self.healthy = False
                self.ready.clear()
                failed_before = True
                if self.polls > polls_before + 1:
                    attempt = 0  # it had been working: start the backoff over
                delay = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
                attempt += 1
                if isinstance(exc, psycopg.Error | OSError):
                    first_line = (str(exc).strip().splitlines() or [""])[0]
                    logger.warning(
                        "realtime: change feed lost the database ({}: {}); retrying in {:.2f}s",
                        type(exc).__name__,
                        first_line,
                        delay,
                    )
                else:
                    logger.exception("realtime: change feed failed; restarting in {:.2f}s", delay)
                await self._close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            finally:
                if self._stopping:
                    await self._close(drop_slot=True)

    async def _open(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=5,
            application_name="chirpbase_realtime",
            options="-c TimeZone=UTC",
        )
        self._conn = conn
        await conn.execute(_SETUP_SQL)
        # Temporary: the slot lives and dies with this session, so it can never be leaked.
        await conn.execute(
            "select pg_create_logical_replication_slot(%s, 'wal2json', true)", (self.slot,)
        )
        logger.info("realtime: change feed reading temporary slot {}", self.slot)

    async def _close(self, *, drop_slot: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if drop_slot and not conn.closed and not conn.broken:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    conn.execute("select pg_drop_replication_slot(%s)", (self.slot,)), 2.0
                )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 2.0)

    async def _loop(self) -> None:
        conn = self._conn
        assert conn is not None
        params = {
            "slot": self.slot,
            "max": self.max_changes,
            "pub": PUBLICATION,
            "flush_prefix": FLUSH_PREFIX,
        }
        flush_params = {"flush_prefix": FLUSH_PREFIX}
        while not self._stopping:
            active = self.state._has_subscribers()
            started = time.perf_counter()
            if self.force_flush:
                await conn.execute(_FLUSH_SQL, flush_params, prepare=True)
            cur = await conn.execute(_POLL_SQL, params, prepare=True)
            rows = await cur.fetchall()
            took = time.perf_counter() - started
            self.polls += 1
            self.last_poll_s = took
            if rows:
                changes = [json.loads(r[0]) for r in rows if r[0] is not None]
                self.changes += len(changes)
                # Re-check: a channel may have subscribed while the poll ran.
                if changes and self.state._has_subscribers():
                    await self.state._dispatch(changes)
            if len(rows) >= self.max_changes:
                continue
            # Each call re-decodes WAL from the slot's restart_lsn (it only moves at the
            # ~15 s running-xacts records, and never past the cluster's oldest open
            # transaction): on a busy cluster a poll can cost 100+ ms of server CPU. Sleeping
            # at least as long as the poll took caps the feed at half a core whatever happens.
            interval = self.poll_interval if active else self.idle_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(interval, min(took, 0.25)))
            self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()


# --------------------------------------------------------------------------------------------
# Server state, dispatch and the websocket protocol
# --------------------------------------------------------------------------------------------


class RealtimeState:
    """Everything the stand-in holds, plus the hooks tests drive."""

    def __init__(
        self,
        dsn: str,
        api_key_verifier: ApiKeyVerifier,
        *,
        poll_interval: float = 0.004,
        idle_interval: float = 0.25,
        max_changes: int = 1000,
        force_flush: bool = True,
        idle_timeout: float = 60.0,
    ) -> None:
        self.dsn = dsn
        self.verify = api_key_verifier
        self.idle_timeout = idle_timeout
        self.accepting = True
        self.connections: set[Connection] = set()
        self.events_sent = 0
        self.handshakes = 0  # websocket upgrades accepted
        self.rejected_handshakes = 0  # refused: bad key, or not accepting
        self.control = _Control(dsn)
        self.feed = ChangeFeed(
            dsn,
            self,
            poll_interval=poll_interval,
            idle_interval=idle_interval,
            max_changes=max_changes,
            force_flush=force_flush,
        )
        self._feed_task: asyncio.Task[None] | None = None
        self._topics: dict[str, set[Channel]] = {}

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._feed_task is None:
            self._feed_task = asyncio.create_task(self.feed.run(), name="realtime-feed")

    async def stop(self) -> None:
        self.accepting = False
        await self.close_connections(1001, "server shutting down")
        self.feed.stop()
        if self._feed_task is not None:
            # let the loop finish its poll and drop the slot itself; cancel only if it hangs
            done, _ = await asyncio.wait({self._feed_task}, timeout=2.0)
            if not done:
                self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._feed_task
            self._feed_task = None
            await self.feed._close(drop_slot=True)
        await self.control.close()

    # --- test hooks ------------------------------------------------------------------------

    async def wait_feed_ready(self) -> None:
        """Wait until the replication slot exists (changes committed after this are seen).

        Wrap it in `asyncio.wait_for` / `asyncio.timeout` to bound the wait.
        """
        await self.feed.ready.wait()

    def drop_connections(self) -> int:
        """Abruptly drop every client connection (no close frame). Returns how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    async def close_connections(self, code: int = 1000, message: str = "") -> int:
        """Close every client connection cleanly with `code`. Returns how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                conn.outbox.put_nowait(None)

        async def close(conn: Connection) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=code, message=message.encode()), 2.0)

        await asyncio.gather(*(close(c) for c in conns))
        return len(conns)

    def stop_accepting(self, *, drop: bool = True) -> None:
        """Refuse new websocket handshakes (503) and, by default, drop the open ones."""
        self.accepting = False
        if drop:
            self.drop_connections()

    def start_accepting(self) -> None:
        self.accepting = True

    @property
    def subscribed_channels(self) -> int:
        return sum(1 for c in self.connections for ch in c.channels.values() if ch.subscribed)

    # --- dispatch --------------------------------------------------------------------------

    def _has_subscribers(self) -> bool:
        return any(
            ch.subscribed and ch.bindings
            for conn in self.connections
            for ch in conn.channels.values()
        )

    def _feed_recovered(self) -> None:
        for conn in list(self.connections):
            for ch in list(conn.channels.values()):
                if ch.bindings and not ch.closed:
                    _start_subscribe(self, ch, delay=0.0)

    async def _dispatch(self, changes: list[dict[str, Any]]) -> None:
        targets = [
            ch
            for conn in list(self.connections)
            if not conn.closed
            for ch in list(conn.channels.values())
            if ch.subscribed and ch.bindings and not ch.closed
        ]
        if not targets:
            return
        for change in changes:
            if change.get("failed"):
                logger.warning(
                    "realtime: could not decode a change on {}.{}: {}",
                    change.get("schema"),
                    change.get("table"),
                    change.get("failed"),
                )
                continue
            relid = int(change["relid"])
            for ch in targets:
                ids = [b.id for b in ch.bindings if self._binding_matches(b, relid, change)]
                if not ids:
                    continue
                select = _merged_select(ch.bindings, ids)
                data = await self._shape(ch, change, select)
                if data is None:
                    continue
                ch.conn.push(ch.topic, "postgres_changes", {"ids": ids, "data": data})
                self.events_sent += 1

    @staticmethod
    def _binding_matches(b: PgBinding, relid: int, change: Mapping[str, Any]) -> bool:
        if relid not in b.relids:
            return False
        action = change["type"]
        if b.event != "*" and b.event != action:
            return False
        if not b.filters:
            return True
        record = change.get("record") or {}
        old = change.get("old_record") or {}
        if action == "DELETE":
            return all(filter_matches(f, old) for f in b.filters)
        return all(filter_matches(f, record) for f in b.filters)

    async def _shape(
        self, ch: Channel, change: Mapping[str, Any], select: set[str] | None
    ) -> dict[str, Any] | None:
        """The `data` object this channel's role may see, or None if it may not see the row."""
        action = change["type"]
        relid = int(change["relid"])
        pk = [str(p) for p in change.get("pk") or []]
        try:
            access = await self.control.access(ch.role, relid)
        except psycopg.Error as exc:
            logger.warning("realtime: privilege lookup failed: {}", exc)
            return None
        base = {"schema": change["schema"], "table": change["table"], "type": action}
        if action != "DELETE" and not pk:
            return {
                **base,
                "columns": [],
                "commit_timestamp": None,
                "errors": ["Error 400: Bad Request, no primary key"],
                "record": {},
                **({"old_record": {}} if action == "UPDATE" else {}),
            }
        if action != "DELETE" and not set(pk) <= access.selectable:
            return {
                **base,
                "columns": [],
                "commit_timestamp": None,
                "errors": ["Error 401: Unauthorized"],
                "record": {},
                **({"old_record": {}} if action == "UPDATE" else {}),
            }
        rls = bool(change.get("rls"))
        if rls and action != "DELETE" and not access.bypass_rls:
            record = change.get("record") or {}
            if not await self.control.row_visible(
                ch.role, ch.claims, relid, {k: record.get(k) for k in pk}
            ):
                return None

        def keep(name: str) -> bool:
            return name in access.selectable and (select is None or name in select or name in pk)

        data: dict[str, Any] = {
            **base,
            "columns": [c for c in change.get("columns") or [] if keep(c["name"])],
            "commit_timestamp": change["commit_timestamp"],
            "errors": None,
        }
        if action in ("INSERT", "UPDATE"):
            data["record"] = {k: v for k, v in (change.get("record") or {}).items() if keep(k)}
        if action == "UPDATE":
            data["old_record"] = {
                k: v for k, v in (change.get("old_record") or {}).items() if keep(k)
            }
        if action == "DELETE":
            data["old_record"] = {
                k: v
                for k, v in (change.get("old_record") or {}).items()
                if keep(k) and (not rls or k in pk)
            }
        return data

    # --- broadcast ------------------------------------------------------------------------

    def _register_topic(self, ch: Channel) -> None:
        self._topics.setdefault(ch.topic, set()).add(ch)

    def _unregister_topic(self, ch: Channel) -> None:
        members = self._topics.get(ch.topic)
        if members is not None:
            members.discard(ch)
            if not members:
                del self._topics[ch.topic]

    def _broadcast(self, sender: Channel, payload: Mapping[str, Any]) -> None:
        for ch in list(self._topics.get(sender.topic, ())):
            if ch is sender and not sender.broadcast_self:
                continue
            if not ch.closed:
                ch.conn.push(ch.topic, "broadcast", dict(payload))


def _merged_select(bindings: list[PgBinding], ids: list[int]) -> set[str] | None:
    selected: set[str] = set()
    for b in bindings:
        if b.id in ids:
            if b.select is None:
                return None
            selected.update(b.select)
    return selected


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


def _verify(state: RealtimeState, token: str) -> dict[str, Any]:
    """Claims of a valid token; raise `_AuthError(code, message)` as Realtime words it."""
    try:
        claims = dict(state.verify(token))
    except Exception as exc:
        text = str(exc).lower()
        if "expired" in text:
            raise _AuthError("expired_token", "Token has expired") from None
        if "signature" in text:
            raise _AuthError("signature_error", "Failed to validate JWT signature") from None
        if "role" in text or "claim" in text:
            raise _AuthError(
                "missing_claims", "Fields `role` and `exp` are required in JWT"
            ) from None
        raise _AuthError("token_malformed", "The token provided is not a valid JWT") from None
    if "role" not in claims or "exp" not in claims:
        raise _AuthError("missing_claims", "Fields `role` and `exp` are required in JWT")
    return claims


class _AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[REALTIME_STATE]
    if not state.accepting:
        state.rejected_handshakes += 1
        return _json_error(503, "Realtime is restarting, please standby")
    vsn = request.query.get("vsn", "1.0.0")
    if not (vsn.startswith("1.") or vsn.startswith("2.")):
        return _json_error(
            403, f'The client\'s requested transport version "{vsn}" is not supported'
        )
    token = request.headers.get("x-api-key") or request.query.get("apikey")
    if not token:
        state.rejected_handshakes += 1
        return _json_error(401, "API key is missing")
    try:
        claims = _verify(state, token)
    except _AuthError as exc:
        state.rejected_handshakes += 1
        return _json_error(401, exc.message)
    state.handshakes += 1

    ws = web.WebSocketResponse(
        autoping=True, compress=False, receive_timeout=state.idle_timeout, max_msg_size=5_000_000
    )
    await ws.prepare(request)
    conn = Connection(ws=ws, request=request, vsn=vsn, token=token, claims=claims)
    state.connections.add(conn)
    writer = asyncio.create_task(_writer(conn))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = _decode(conn, msg.data)
            except (ValueError, TypeError, KeyError):
                logger.debug("realtime: malformed websocket message ignored")
                continue
            await _handle(state, conn, *frame)
    except TimeoutError:
        logger.debug("realtime: closing idle websocket")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        conn.closed = True
        for ch in list(conn.channels.values()):
            _close_channel(state, ch)
        state.connections.discard(conn)
        with contextlib.suppress(asyncio.QueueFull):
            conn.outbox.put_nowait(None)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
    return ws


async def _writer(conn: Connection) -> None:
    while True:
        frame = await conn.outbox.get()
        if frame is None or conn.ws.closed:
            return
        try:
            await conn.ws.send_str(frame)
        except (ConnectionResetError, RuntimeError):
            return


def _decode(conn: Connection, text: str) -> tuple[str | None, str | None, str, str, Any]:
    data = json.loads(text)
    if isinstance(data, list):
        join_ref, ref, topic, event, payload = data
    else:
        join_ref = data.get("join_ref")
        ref = data.get("ref")
        topic = data["topic"]
        event = data["event"]
        payload = data.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise TypeError("topic and event must be strings")
    return (
        None if join_ref is None else str(join_ref),
        None if ref is None else str(ref),
        topic,
        event,
        payload if payload is not None else {},
    )


async def _handle(
    state: RealtimeState,
    conn: Connection,
    join_ref: str | None,
    ref: str | None,
    topic: str,
    event: str,
    payload: Any,
) -> None:
    if topic == PHOENIX_TOPIC and event == "heartbeat":
        conn.reply(PHOENIX_TOPIC, ref, "ok", {})
        return
    existing = conn.channels.get(topic)
    if event == "phx_join":
        if existing is not None:
            # Phoenix: shut the old channel down, answer the new join, then push phx_close for
            # the old join (it arrives after the reply).
            _close_channel(state, existing)
            del conn.channels[topic]
            await _join(state, conn, join_ref, ref, topic, payload)
            conn.push(topic, "phx_close", {}, existing.join_ref, existing.join_ref)
        else:
            await _join(state, conn, join_ref, ref, topic, payload)
        return
    if existing is None:
        if event == "phx_leave":
            conn.reply(topic, ref, "ok", {}, join_ref)
        else:
            conn.reply(topic, ref, "error", {"reason": "unmatched topic"}, join_ref)
        return
    if join_ref is not None and existing.join_ref is not None and join_ref != existing.join_ref:
        return  # a stale message for an earlier join of this topic
    if event == "phx_leave":
        conn.reply(topic, ref, "ok", {}, existing.join_ref)
        _close_channel(state, existing)
        del conn.channels[topic]
        conn.push(topic, "phx_close", {}, existing.join_ref, existing.join_ref)
    elif event == "access_token":
        await _access_token(state, existing, payload)
    elif event == "broadcast" and isinstance(payload, dict):
        state._broadcast(existing, payload)
        if existing.broadcast_ack:
            conn.reply(topic, ref, "ok", {}, existing.join_ref)
    # presence and anything else: accepted and ignored, like handle_in/3's catch-all


async def _join(
    state: RealtimeState,
    conn: Connection,
    join_ref: str | None,
    ref: str | None,
    topic: str,
    payload: Any,
) -> None:
    def error(reason: str) -> None:
        conn.reply(topic, ref, "error", {"reason": reason}, join_ref)

    if not topic.startswith("realtime:"):
        conn.reply(topic, ref, "error", {"reason": "unmatched topic"}, join_ref)
        return
    if topic == "realtime:":
        error("TopicNameRequired: You must provide a topic name")
        return
    params = payload if isinstance(payload, dict) else {}
    token = params.get("access_token") or params.get("user_token")
    if not isinstance(token, str) or token.startswith("sb_"):
        token = conn.token
    try:
        claims = _verify(state, token)
    except _AuthError as exc:
        code = "MalformedJWT" if exc.code == "token_malformed" else "InvalidJWTToken"
        if exc.code == "signature_error":
            code = "JwtSignatureError"
        error(f"{code}: {exc.message}")
        return
    config = params.get("config") if isinstance(params.get("config"), dict) else {}
    assert isinstance(config, dict)
    raw_changes = config.get("postgres_changes") or []
    if not isinstance(raw_changes, list):
        raw_changes = []
    bindings: list[PgBinding] = []
    invalid: str | None = None
    reply_changes: list[dict[str, Any]] = []
    for entry in raw_changes:
        if not isinstance(entry, dict):
            continue
        try:
            b = parse_binding(entry)
        except SubscriptionError as exc:
            invalid = invalid or str(exc)
            b = PgBinding(binding_id(entry), dict(entry), "*", "", "", (), None)
        bindings.append(b)
        reply_changes.append({**entry, "id": b.id})
    broadcast = config.get("broadcast") if isinstance(config.get("broadcast"), dict) else {}
    assert isinstance(broadcast, dict)
    ch = Channel(
        topic=topic,
        join_ref=join_ref,
        conn=conn,
        claims=claims,
        access_token=token,
        bindings=bindings,
        broadcast_self=bool(broadcast.get("self")),
        broadcast_ack=bool(broadcast.get("ack")),
    )
    conn.channels[topic] = ch
    state._register_topic(ch)
    conn.reply(topic, ref, "ok", {"postgres_changes": reply_changes}, join_ref)
    if invalid is not None:
        _push_system(ch, "postgres_changes", "error", invalid)
    elif bindings:
        _start_subscribe(state, ch, delay=0.0)


async def _access_token(state: RealtimeState, ch: Channel, payload: Any) -> None:
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or token.startswith("sb_") or token == ch.access_token:
        return
    try:
        claims = _verify(state, token)
    except _AuthError as exc:
        _push_system(ch, "system", "error", exc.message)
        _close_channel(state, ch)
        ch.conn.channels.pop(ch.topic, None)
        ch.conn.push(ch.topic, "phx_close", {}, ch.join_ref, ch.join_ref)
        return
    ch.access_token = token
    ch.claims = claims
    if ch.bindings:
        ch.subscribed = False
        _start_subscribe(state, ch, delay=0.0)


def _close_channel(state: RealtimeState, ch: Channel) -> None:
    ch.closed = True
    ch.subscribed = False
    if ch.subscribe_task is not None and not ch.subscribe_task.done():
        ch.subscribe_task.cancel()
    state._unregister_topic(ch)


REALTIME_STATE: web.AppKey[RealtimeState] = web.AppKey("realtime_state", RealtimeState)


def create_realtime_app(
    dsn: str,
    *,
    api_key_verifier: ApiKeyVerifier,
    poll_interval: float = 0.004,
    idle_interval: float = 0.25,
    force_flush: bool = True,
    idle_timeout: float = 60.0,
) -> web.Application:
    """The Realtime stand-in as an aiohttp app serving `/websocket` (mount at `/realtime/v1/`).

    `dsn` must be allowed to create replication slots (superuser or REPLICATION), as Realtime's
    own connection is. The feed starts with the app and its slot is dropped on cleanup.
    """
    app = web.Application()
    state = RealtimeState(
        dsn,
        api_key_verifier,
        poll_interval=poll_interval,
        idle_interval=idle_interval,
        force_flush=force_flush,
        idle_timeout=idle_timeout,
    )
    app[REALTIME_STATE] = state

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await state.start()
        yield
        await state.stop()

    async def on_shutdown(_app: web.Application) -> None:
        # Open websockets would hold the runner's graceful shutdown for its whole timeout.
        state.accepting = False
        await state.close_connections(1001, "server shutting down")

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/websocket", _websocket)
    return app
