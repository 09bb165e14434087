"""The Realtime stand-in's server state: connections, channels, the feed and dispatch of each
change to the channels whose bindings match it, broadcast, and the hooks tests drive
(`drop_connections`, `close_connections`, `stop_accepting` / `start_accepting`,
`wait_feed_ready`, counters).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from aiohttp import web
from loguru import logger

from sandbox.realtime.channels import Channel, Connection, _Control, _start_subscribe
from sandbox.realtime.feed import ChangeFeed
from sandbox.realtime.filters import filter_matches
from sandbox.realtime.subscriptions import PgBinding

ApiKeyVerifier = Callable[[str], Mapping[str, object]]
"""Returns the claims of a valid key; raises (any exception) for an invalid one."""


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


REALTIME_STATE: web.AppKey[RealtimeState] = web.AppKey("realtime_state", RealtimeState)
