"""The change feed: a temporary wal2json slot (format-version 2) read with
`pg_logical_slot_get_changes` in a tight async loop, the SQL interface Realtime's own
`realtime.list_changes` polls; values typed in SQL as `realtime.cast` types them; the forced WAL
flush and the polling cadence explained in the package docstring; reconnection with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import time
from typing import TYPE_CHECKING, Any

import psycopg
from loguru import logger

if TYPE_CHECKING:
    from sandbox.realtime.state import RealtimeState


PUBLICATION = "supabase_realtime"
FLUSH_PREFIX = "chirpbase_rt_flush"


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
