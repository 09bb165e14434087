"""Faults the X stand-in injects on request: what a network or an X outage does to a client.

Latency on an endpoint; the next requests failing before any work (a 5xx, or 400 / 401 with
X's invalid-request / unauthorized body: refusals X could give, such as media that expired on
its side or credentials revoked mid-flight); requests hanging past the client's timeout; a 429
without x-rate-limit-* headers; a post created and its answer lost (connection reset or left
hanging). ``XState`` mixes :class:`FaultInjection` in; the middleware takes the faults before
it does anything else (middleware.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from typing import Literal

DropMode = Literal["reset", "hang"]


@dataclass
class Faults:
    latency: dict[str, float] = field(default_factory=dict)
    fail: dict[str, list[int]] = field(default_factory=dict)
    hang: dict[str, list[float]] = field(default_factory=dict)
    no_reset_429: dict[str, int] = field(default_factory=dict)
    drop_after_create: list[DropMode | None] = field(default_factory=list)


class FaultInjection:
    """The fault methods of ``XState`` (``_init_faults`` from its ``__init__``)."""

    _lock: threading.RLock
    _faults: Faults
    _release: asyncio.Event | None
    _release_loop: asyncio.AbstractEventLoop | None

    def _init_faults(self) -> None:
        self._faults = Faults()
        self._release = None
        self._release_loop = None

    def inject_latency(self, endpoint: str, seconds: float) -> None:
        """Delay every response of ``endpoint`` (0 to stop)."""
        with self._lock:
            self._faults.latency[endpoint] = seconds

    def fail_next(self, endpoint: str, n: int = 1, *, status: int = 503) -> None:
        """The next ``n`` requests to ``endpoint`` fail before any work: a 5xx (500, 502, 503),
        or 400 / 401 with X's invalid-request / unauthorized body (a refusal X could give:
        media that expired on its side, credentials revoked mid-flight)."""
        with self._lock:
            self._faults.fail.setdefault(endpoint, []).extend([status] * n)

    def hang_next(self, endpoint: str, n: int = 1, *, seconds: float = 60.0) -> None:
        """The next ``n`` requests to ``endpoint`` hang (before any work) for ``seconds`` or
        until :meth:`release_hangs`: longer than the client's timeout."""
        with self._lock:
            self._faults.hang.setdefault(endpoint, []).extend([seconds] * n)

    def rate_limit_without_reset_next(self, endpoint: str, n: int = 1) -> None:
        """The next ``n`` requests get a 429 that carries no x-rate-limit-* headers."""
        with self._lock:
            self._faults.no_reset_429[endpoint] = self._faults.no_reset_429.get(endpoint, 0) + n

    def drop_after_create_next(
        self, n: int = 1, *, mode: DropMode = "reset", after: int = 0
    ) -> None:
        """The next ``n`` POST /2/tweets (after ``after`` answered normally) create the tweet,
        then the client gets no answer: the connection is closed ("reset") or left hanging
        ("hang") past its timeout."""
        with self._lock:
            self._faults.drop_after_create.extend([None] * after + [mode] * n)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = Faults()

    def take_latency(self, endpoint: str) -> float:
        with self._lock:
            return self._faults.latency.get(endpoint, 0.0)

    def take_failure(self, endpoint: str) -> int | None:
        with self._lock:
            queue = self._faults.fail.get(endpoint)
            return queue.pop(0) if queue else None

    def take_hang(self, endpoint: str) -> float | None:
        with self._lock:
            queue = self._faults.hang.get(endpoint)
            return queue.pop(0) if queue else None

    def take_no_reset_429(self, endpoint: str) -> bool:
        with self._lock:
            left = self._faults.no_reset_429.get(endpoint, 0)
            if left <= 0:
                return False
            self._faults.no_reset_429[endpoint] = left - 1
            return True

    def take_drop_after_create(self) -> DropMode | None:
        with self._lock:
            queue = self._faults.drop_after_create
            return queue.pop(0) if queue else None

    async def wait_hang(self, seconds: float) -> None:
        """Sleep ``seconds`` or until :meth:`release_hangs` (call from the server loop)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._release is None or self._release_loop is not loop:
                self._release = asyncio.Event()
                self._release_loop = loop
            event = self._release
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)

    def release_hangs(self) -> None:
        """Wake every hanging request now (before stopping the server, for instance)."""
        with self._lock:
            event, loop = self._release, self._release_loop
            self._release = None
        if event is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)
