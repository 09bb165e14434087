"""The worker's Realtime doorbell: `postgres_changes` on `jobs` (INSERT) and `configs` (*).

Tables in `watch` (the console's `scheduled_tweets` and `reply_drafts`) are subscribed too, every
event, and ring with their own name.

An event only means "look now"; the tables are the truth. The doorbell therefore cares about
one thing above all: being subscribed, and telling the worker to re-poll whenever it may have
missed something. It supervises the subscription itself instead of trusting the client's
reconnect logic, because supabase-py/realtime 2.x

* gives up after `max_retries` failed connection attempts and then stays silent,
* raises nothing anywhere we could see when its background listen task dies (an exception in
  any channel callback kills that task: the socket stays "connected" and deaf),
* on a server close (1000/1001) behaves differently from an abrupt drop, and
* on a duplicate join (a rejoin on the same socket) receives the server's `phx_close` for the
  old join and drops the channel as CLOSED.

So each session is a fresh client with `auto_reconnect=False`: connect, join, wait for
SUBSCRIBED, then watch. Anything other than a healthy joined channel (CHANNEL_ERROR, CLOSED,
TIMED_OUT, a dead listen task, a socket gone) ends the session, and the doorbell starts a new
one after an exponential backoff with jitter. After every successful subscribe it rings
`on_ring("*", {})` so the worker re-polls what it may have missed; it rings "*" again when the
server reports "Subscribed to PostgreSQL" (Realtime confirms the database subscription after
the join reply, so changes committed in between can be missed; the server also repeats that
message after its own replication recovers).

Callbacks from the realtime client run synchronously inside its listen task: `on_ring` must be
a plain function that hands off (set an event, `put_nowait`), never `async def`. Exceptions
from it are caught and logged here so they cannot kill the client's listen task.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable
from typing import Any

from loguru import logger
from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from realtime.types import RealtimePostgresChangesListenEvent as PgEvent

from supabase import AsyncClient, AsyncClientOptions, acreate_client
from worker.aio import wait_event, within

__all__ = ["Doorbell", "DoorbellError", "RingCallback"]

RingCallback = Callable[[str, dict[str, Any]], None]
"""`on_ring(table, record)`: table is "jobs", "configs" or "*" (re-poll everything)."""

SUBSCRIBED_TO_POSTGRES = "Subscribed to PostgreSQL"
_APIKEY_RE = re.compile(r"(apikey=)[^&\s'\"]+", re.IGNORECASE)


class DoorbellError(Exception):
    """A session could not be established (join refused, timed out, mismatched bindings...)."""


class Doorbell:
    """Keeps one Realtime subscription alive and turns its events into `on_ring` calls.

    `connected` is True while the channel is joined (SUBSCRIBED); `down_since` is the
    `time.monotonic()` at which it last stopped being connected (construction time before the
    first subscribe), None while connected.
    """

    def __init__(
        self,
        url: str,
        key: str,
        on_ring: RingCallback,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        backoff_jitter: float = 0.5,
        subscribe_timeout: float = 10.0,
        stable_after: float = 30.0,
        check_interval: float = 1.0,
        heartbeat_interval: int = 15,
        channel_name: str = "chirpbase-doorbell",
        watch: tuple[str, ...] = (),
    ) -> None:
        if not 0.0 <= backoff_jitter <= 1.0:
            raise ValueError("backoff_jitter must be between 0 and 1")
        self.url = url.rstrip("/")
        self._key = key
        self.on_ring = on_ring
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.backoff_jitter = backoff_jitter
        self.subscribe_timeout = subscribe_timeout
        self.stable_after = stable_after
        self.check_interval = check_interval
        self.heartbeat_interval = heartbeat_interval
        self.channel_name = channel_name
        self.watch = tuple(t for t in dict.fromkeys(watch) if t not in ("jobs", "configs"))

        self.connected = False
        self.down_since: float | None = time.monotonic()
        self.sessions = 0  # successful subscribes (the first one included)
        self.rings = 0  # table events delivered to on_ring (synthetic "*" excluded)
        # True once the server confirmed the database subscription for this session.
        self.database_subscribed = False

        self._stopping = asyncio.Event()
        self._done = asyncio.Event()
        self._running = False
        self._session_task: asyncio.Task[None] | None = None

    # -- public -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Subscribe, supervise, re-subscribe with backoff; returns after `stop()`."""
        if self._running:
            raise RuntimeError("Doorbell.run() is already running")
        self._running = True
        self._done.clear()
        attempt = 0
        try:
            while not self._stopping.is_set():
                subscribed_at: list[float] = []
                self._session_task = asyncio.create_task(
                    self._session(subscribed_at), name="doorbell-session"
                )
                stop_wait = asyncio.create_task(self._stopping.wait())
                try:
                    await asyncio.wait(
                        {self._session_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    stop_wait.cancel()
                if not self._session_task.done():
                    self._session_task.cancel()
                try:
                    await self._session_task
                except asyncio.CancelledError:
                    if not self._stopping.is_set():
                        raise
                except Exception as exc:
                    logger.warning("doorbell: session failed: {}", self._safe(exc))
                finally:
                    self._set_connected(False)
                if self._stopping.is_set():
                    break
                if subscribed_at and time.monotonic() - subscribed_at[0] >= self.stable_after:
                    attempt = 0
                delay = self._backoff(attempt)
                attempt += 1
                logger.info("doorbell: re-subscribing in {:.2f}s (attempt {})", delay, attempt)
                await wait_event(self._stopping, delay)
        finally:
            task = self._session_task
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            self._session_task = None
            self._set_connected(False)
            self._running = False
            self._done.set()

    async def stop(self) -> None:
        """Leave the channel, close the socket and make `run()` return."""
        self._stopping.set()
        if self._running:
            await wait_event(self._done, 10.0)

    # -- one session ------------------------------------------------------------------------
    async def _session(self, subscribed_at: list[float]) -> None:
        states: asyncio.Queue[tuple[RealtimeSubscribeStates, Exception | None]] = asyncio.Queue()

        def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
            states.put_nowait((state, error))

        options = AsyncClientOptions(
            auto_refresh_token=False,
            persist_session=False,
            realtime={
                # we reconnect ourselves: a failed connect or a dropped socket ends the session
                "auto_reconnect": False,
                "max_retries": 1,
                "hb_interval": self.heartbeat_interval,
            },
        )
        client: AsyncClient = await acreate_client(self.url, self._key, options=options)
        channel: AsyncRealtimeChannel | None = None
        clean = False
        try:
            channel = client.channel(self.channel_name)
            # Always both schema and table: the client checks its bindings against the
            # server's reply and drops the channel on any mismatch.
            channel.on_postgres_changes(
                PgEvent.Insert, self._on_jobs, table="jobs", schema="public"
            )
            channel.on_postgres_changes(
                PgEvent.All, self._on_configs, table="configs", schema="public"
            )
            for table in self.watch:
                channel.on_postgres_changes(
                    PgEvent.All, self._watcher(table), table=table, schema="public"
                )
            channel.on_system(self._on_system)
            try:
                await asyncio.wait_for(channel.subscribe(on_state), self.subscribe_timeout)
                state, error = await asyncio.wait_for(states.get(), self.subscribe_timeout)
            except TimeoutError:
                raise DoorbellError("no answer to the channel join") from None
            if state != RealtimeSubscribeStates.SUBSCRIBED:
                raise DoorbellError(f"subscribe ended {state.value}: {self._safe(error)}")

            subscribed_at.append(time.monotonic())
            self.sessions += 1
            self._set_connected(True)
            logger.info("doorbell: subscribed (session {})", self.sessions)
            self._ring("*", {})

            while not self._stopping.is_set():
                try:
                    state, error = await within(states.get(), self.check_interval)
                except TimeoutError:
                    problem = self._health_problem(client, channel)
                    if problem:
                        logger.warning("doorbell: {}", problem)
                        return
                    continue
                if state == RealtimeSubscribeStates.SUBSCRIBED:
                    continue
                logger.warning(
                    "doorbell: subscription lost ({}{})",
                    state.value,
                    f": {self._safe(error)}" if error else "",
                )
                return
            clean = True
        finally:
            self._set_connected(False)
            await self._close(client, polite=clean or self._stopping.is_set())

    def _health_problem(self, client: AsyncClient, channel: AsyncRealtimeChannel) -> str | None:
        rt = client.realtime
        if not rt.is_connected:
            return "socket closed"
        listen = getattr(rt, "_listen_task", None)
        if isinstance(listen, asyncio.Task) and listen.done():
            return "the realtime client's listen task has stopped"
        if not channel.is_joined:
            return f"channel is {channel.state.value}"
        return None

    async def _close(self, client: AsyncClient, *, polite: bool) -> None:
        rt = client.realtime
        with contextlib.suppress(Exception):
            if polite and rt.is_connected:
                await asyncio.wait_for(rt.remove_all_channels(), 2.0)
            else:
                await asyncio.wait_for(rt.close(), 2.0)
        with contextlib.suppress(Exception):
            await client.auth.close()

    # -- callbacks (run synchronously inside the client's listen task) ---------------------
    def _on_jobs(self, payload: Any) -> None:
        data = payload.get("data") or {}
        self.rings += 1
        self._ring("jobs", dict(data.get("record") or {}))

    def _on_configs(self, payload: Any) -> None:
        data = payload.get("data") or {}
        record = data.get("record") or data.get("old_record") or {}
        self.rings += 1
        self._ring("configs", dict(record))

    def _watcher(self, table: str) -> Callable[[Any], None]:
        def on_change(payload: Any) -> None:
            data = payload.get("data") or {}
            self.rings += 1
            self._ring(table, dict(data.get("record") or data.get("old_record") or {}))

        return on_change

    def _on_system(self, payload: Any) -> None:
        message = getattr(payload, "message", None)
        extension = getattr(payload, "extension", None)
        if extension == "postgres_changes" and message == SUBSCRIBED_TO_POSTGRES:
            self.database_subscribed = True
            self._ring("*", {})

    def _ring(self, table: str, record: dict[str, Any]) -> None:
        try:
            self.on_ring(table, record)
        except Exception:
            logger.exception("doorbell: on_ring callback raised (ignored)")

    # -- helpers ----------------------------------------------------------------------------
    def _set_connected(self, up: bool) -> None:
        if up:
            self.down_since = None
        else:
            self.database_subscribed = False
            if self.connected or self.down_since is None:
                self.down_since = time.monotonic()
        self.connected = up

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max, self.backoff_initial * (2**attempt))
        return base * (1.0 - self.backoff_jitter * random.random())

    def _safe(self, value: object) -> str:
        """Text for logs with the key (and any `apikey=` query value) removed."""
        if value is None:
            return ""
        text = (
            f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else str(value)
        )
        if self._key:
            text = text.replace(self._key, "[REDACTED]")
        return _APIKEY_RE.sub(r"\1[REDACTED]", text)
