"""Interfaces the worker process serves beside its own `/health` and `/metrics`.

The operator console lives above the runtime (it is an interface, like the CLI) and the runtime
must never import it. So the runtime only knows this shape: an aiohttp application mounted under
a path, on the health port or on a listener of its own, plus the tables it wants the Realtime
doorbell to ring for and a callback for those rings. `chirpbase worker` builds the console's
`Mount` and hands it to `Worker.mount()` before the worker starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

RingListener = Callable[[str, dict[str, Any]], None]
"""`on_ring(table, record)`, called synchronously from the doorbell: hand off, never block."""


@dataclass(frozen=True)
class Mount:
    """An aiohttp app served by the worker process.

    `port=None` mounts it under `prefix` on the health port (HTTP_PORT); a number gives it a
    listener of its own on `host` (0 picks a free port), still under `prefix`, so an operator can
    expose it differently from health. `watch` names extra tables whose changes the doorbell
    should ring for (they must be in the `supabase_realtime` publication); `on_ring` receives
    every ring, theirs and the worker's own (`jobs`, `configs`, `*` after a re-subscribe).
    """

    name: str
    app: web.Application
    prefix: str
    port: int | None = None
    host: str | None = None
    watch: tuple[str, ...] = ()
    on_ring: RingListener | None = None

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or self.prefix.rstrip("/") == "":
            raise ValueError(f"mount {self.name}: prefix must be a path such as /console")
