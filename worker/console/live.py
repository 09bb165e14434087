"""Live inbox: the doorbell rings, the console looks, open pages hear it (server-sent events).

A ring for `scheduled_tweets` or `reply_drafts` (a draft became ready, was approved elsewhere
...) or `*` (the doorbell re-subscribed and may have missed something) makes the feed read the
inbox's state token (one cheap query) and, when it changed, push `event: inbox` to every open
page, which then fetches the new items. A reply draft that passes its expiry leaves the list on
the next look (the state counts only unexpired drafts). Like the worker's claim loop, nothing
depends on an event arriving: while pages are open the feed also looks every `poll_s` seconds,
so a lost event costs latency, never a missed draft. Rings arriving together are folded into
one look.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web
from loguru import logger

from worker.console.data import ConsoleDB
from worker.ops.operator import OperatorError

WATCHED = ("scheduled_tweets", "reply_drafts")


class InboxFeed:
    def __init__(self, db: ConsoleDB, *, poll_s: float = 10.0, heartbeat_s: float = 15.0):
        self.db = db
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.state: dict[str, Any] = {"waiting": 0, "token": None}
        self.rings = 0
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._look = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- doorbell side (sync, called from the Realtime client's task) -----------------------
    def ring(self, table: str, _record: dict[str, Any]) -> None:
        if table in WATCHED:
            self.rings += 1  # changes to watched tables (re-subscribe rings not counted)
        if table in WATCHED or table == "*":
            self._look.set()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-inbox-feed")

    async def close(self) -> None:
        """Ends every open stream (so shutdown never waits on them) and the feed."""
        self._closing.set()
        for q in list(self._listeners):
            q.put_nowait({"close": True})
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._look.wait()
            self._look.clear()
            if not self._listeners:
                continue
            try:
                state = await self.db.run(lambda op: op.inbox_state())
            except OperatorError as exc:
                logger.debug("console: inbox state unavailable: {}", exc)
                continue
            if state.get("token") != self.state.get("token"):
                self.state = state
                self._publish({"event": "inbox", "data": state})

    def _publish(self, message: dict[str, Any]) -> None:
        for q in list(self._listeners):
            if q.qsize() < 20:  # a stalled client loses events, not memory
                q.put_nowait(message)

    # -- the stream -------------------------------------------------------------------------
    async def stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",  # proxies: do not buffer the stream
            }
        )
        await resp.prepare(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners.add(queue)
        self._look.set()  # a fresh page gets the current state at once
        try:
            await resp.write(b"retry: 3000\n\n")
            if self.state.get("token") is not None:
                await resp.write(_frame("inbox", self.state))
            while not self._closing.is_set():
                try:
                    async with asyncio.timeout(self.heartbeat_s):
                        message = await queue.get()
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if message.get("close"):
                    break
                await resp.write(_frame(message["event"], message["data"]))
        except ConnectionResetError:  # the page went away
            pass
        finally:
            self._listeners.discard(queue)
        return resp


def _frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
