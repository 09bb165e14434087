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

The package, one module per concern: `subscriptions` (binding parameters, parsed and refused as
Realtime does), `filters` (filter evaluation on typed values), `channels` (connections, channels,
the control connection and subscribing), `feed` (the wal2json change feed and its SQL), `state`
(`RealtimeState`: dispatch and the test hooks), `protocol` (the websocket and Phoenix frames),
`app` (`create_realtime_app`).
Every public name of every module is importable from the package; `__all__` lists the four
that `import *` gives.
"""

from __future__ import annotations

from sandbox.realtime.app import create_realtime_app
from sandbox.realtime.channels import SUBSCRIBED_MESSAGE as SUBSCRIBED_MESSAGE
from sandbox.realtime.channels import Channel as Channel
from sandbox.realtime.channels import Connection as Connection
from sandbox.realtime.feed import FLUSH_PREFIX as FLUSH_PREFIX
from sandbox.realtime.feed import PUBLICATION as PUBLICATION
from sandbox.realtime.feed import ChangeFeed as ChangeFeed
from sandbox.realtime.filters import filter_matches as filter_matches
from sandbox.realtime.protocol import PHOENIX_TOPIC as PHOENIX_TOPIC
from sandbox.realtime.state import REALTIME_STATE, ApiKeyVerifier, RealtimeState
from sandbox.realtime.subscriptions import FILTER_OPS as FILTER_OPS
from sandbox.realtime.subscriptions import PgBinding as PgBinding
from sandbox.realtime.subscriptions import PgFilter as PgFilter
from sandbox.realtime.subscriptions import SubscriptionError as SubscriptionError
from sandbox.realtime.subscriptions import binding_id as binding_id
from sandbox.realtime.subscriptions import parse_binding as parse_binding
from sandbox.realtime.subscriptions import parse_filters as parse_filters

__all__ = [
    "REALTIME_STATE",
    "ApiKeyVerifier",
    "RealtimeState",
    "create_realtime_app",
]
