"""The alert conditions a worker checks on a clock (see docs/alerts.md for every kind and rule).

Alerts live in `public.alerts` (one open row per `dedupe_key`; raising again bumps
`occurrences`). Some are raised where the condition happens (SQL: dead jobs, quotas; handlers:
X/OpenAI refusals; LiveConfig: a rejected config). :class:`AlertMonitor` adds what needs a clock
or the worker's own eyes, every `check_interval_s`, in a background task that never touches the
claim loop: it runs `evaluate_alerts()` in SQL (quota, dead-job, repeated-failure, X/OpenAI
resolution rules), resolves `db_stall:<kind>` once that kind succeeds again
(`resolve_stall_alerts()`), raises/resolves `doorbell_down:<worker>` past a grace period, resolves
`config_rejected:<key>` once the stored value validates, and records a database outage it lived
through once the database is back (nothing can be written while it is down, so the outage is
logged then and written afterwards with its duration).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from loguru import logger
from prometheus_client import Counter
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from worker.alerts.policy import AlertChange, AlertPolicy, format_duration
from worker.config.live import LiveConfig
from worker.config.models import CONFIG_MODELS
from worker.db import Database, query
from worker.logs import redact

_log = logger.bind(component="alerts")

ALERT_CHANGES = Counter(
    "chirpbase_alert_changes_total", "Alerts raised or resolved by the worker", ["action", "kind"]
)


class WorkerLike(Protocol):
    """What the monitor reads from the worker (see worker/runtime/worker.py)."""

    worker_id: str
    db: Database
    config: LiveConfig
    db_up: bool
    db_down_since: float | None
    doorbell: Any


def _wall_at(mono: float, now_mono: float | None = None) -> datetime:
    """The wall-clock time of a `time.monotonic()` reading."""
    now_mono = time.monotonic() if now_mono is None else now_mono
    return datetime.now(UTC) - timedelta(seconds=max(0.0, now_mono - mono))


def _key_suffix(dedupe_key: str) -> str:
    return dedupe_key.partition(":")[2]


@dataclass
class _Outage:
    down_since: datetime
    back_at: datetime
    seconds: float


class AlertMonitor:
    """Evaluates alert conditions every `policy.check_interval_s` (see the module docstring)."""

    def __init__(
        self,
        worker: WorkerLike,
        policy: AlertPolicy,
        *,
        on_change: Any = None,
    ) -> None:
        self.worker = worker
        self.policy = policy
        self.on_change = on_change  # plain callable, e.g. AlertNotifier.wake
        self.ticks = 0
        self._db_down_mono: float | None = None
        self._db_down_logged = False
        self._outages: list[_Outage] = []
        self._bell_key = f"doorbell_down:{worker.worker_id}"
        self._bell_open = False
        self._bell_down_mono: float | None = None

    @property
    def db(self) -> Database:
        return self.worker.db

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.tick()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    _log.warning("alert check failed: {}", redact(f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(self.policy.check_interval_s)
        except asyncio.CancelledError:
            await self._on_stop()
            raise

    async def tick(self) -> list[AlertChange]:
        """One evaluation; returns what it raised, resolved or recorded."""
        self.ticks += 1
        now = time.monotonic()
        changes: list[AlertChange] = []
        if not self.worker.db_up:
            self._observe_db_down(now)
            return changes
        if self._db_down_mono is not None:
            self._db_back(now)
        changes += await self._write_outages()
        changes += await self._evaluate()
        changes += [
            AlertChange("resolved", r["dedupe_key"], r["message"])
            for r in await self.db.fetch("resolve_stall_alerts")
        ]
        changes += await self._check_doorbell(now)
        changes += await self._check_configs()
        for change in changes:
            ALERT_CHANGES.labels(change.action, change.dedupe_key.partition(":")[0]).inc()
            _log.bind(alert=change.dedupe_key).info(
                "alert {} {}: {}", change.action, change.dedupe_key, redact(change.message)
            )
        if changes and self.on_change is not None:
            self.on_change()
        return changes

    # -- database outages --------------------------------------------------------------------
    def _observe_db_down(self, now: float) -> None:
        if self._db_down_mono is None:
            since = self.worker.db_down_since
            self._db_down_mono = since if since is not None else now
            self._db_down_logged = False
        down_for = now - self._db_down_mono
        if not self._db_down_logged and down_for >= self.policy.database_grace_s:
            self._db_down_logged = True
            _log.error(
                "database unreachable for {} (since {:%H:%M:%S} UTC): jobs wait; the "
                "database_down alert is written when it is back",
                format_duration(down_for),
                _wall_at(self._db_down_mono, now),
            )

    def _db_back(self, now: float) -> None:
        assert self._db_down_mono is not None
        seconds = now - self._db_down_mono
        down_since = _wall_at(self._db_down_mono, now)
        self._db_down_mono = None
        self._db_down_logged = False
        if seconds < self.policy.database_grace_s:
            _log.info("database was unreachable for {}; back now", format_duration(seconds))
            return
        _log.warning("database back after {} unreachable", format_duration(seconds))
        self._outages.append(
            _Outage(down_since=down_since, back_at=datetime.now(UTC), seconds=seconds)
        )

    async def _write_outages(self) -> list[AlertChange]:
        changes = []
        while self._outages:
            outage = self._outages[0]
            await self.record_outage(outage.down_since, outage.back_at, outage.seconds)
            self._outages.pop(0)
            changes.append(
                AlertChange(
                    "recorded",
                    "database_down",
                    f"database unreachable for {format_duration(outage.seconds)}",
                )
            )
        return changes

    async def record_outage(self, down_since: datetime, back_at: datetime, seconds: float) -> int:
        """Write one resolved `database_down` alert (or fold into a replica's row for it)."""
        worker_id = self.worker.worker_id
        message = (
            f"database unreachable for {format_duration(seconds)} "
            f"({down_since:%Y-%m-%d %H:%M:%S}–{back_at:%H:%M:%S} UTC, seen by worker "
            f"{worker_id}); jobs waited and resumed"
        )
        details = {
            "down_since": down_since.isoformat(),
            "back_at": back_at.isoformat(),
            "down_for_s": round(seconds, 1),
            "workers": [worker_id],
            "resolution": f"the database answered again after {format_duration(seconds)}",
        }
        params = {
            "worker_id": worker_id,
            "down_since": down_since,
            "back_at": back_at,
            "message": message,
            "details": Jsonb(details),
        }
        async with self.db.transaction() as conn:
            await conn.execute(query("lock_outage_record"))
            cur = await conn.execute(query("fold_database_outage"), params)
            row = await cur.fetchone()
            if row is None:
                cur = await conn.execute(query("insert_database_outage"), params)
                row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    # -- SQL-evaluated conditions ---------------------------------------------------------------
    async def _evaluate(self) -> list[AlertChange]:
        p = self.policy
        rows = await self.db.fetch(
            "evaluate_alerts",
            {
                "failure_threshold": p.failure_threshold,
                "failure_window_s": p.failure_window_s,
                "stale_after_s": p.stale_after_s,
            },
        )
        return [AlertChange(r["action"], r["dedupe_key"], r["message"]) for r in rows]

    # -- doorbell -------------------------------------------------------------------------------
    async def _check_doorbell(self, now: float) -> list[AlertChange]:
        bell = self.worker.doorbell
        if bell is None:
            return []
        key = self._bell_key
        connected = bool(getattr(bell, "connected", False))
        down_since = None if connected else getattr(bell, "down_since", None)
        if down_since is not None and now - down_since >= self.policy.doorbell_grace_s:
            if self._bell_open and await self.db.execute("touch_alert", {"dedupe_key": key}):
                return []
            self._bell_open = True
            self._bell_down_mono = down_since
            message = (
                f"Realtime doorbell of worker {self.worker.worker_id} down for "
                f"{format_duration(now - down_since)}: jobs still run, found by polling instead of "
                "within milliseconds (check SUPABASE_URL, SUPABASE_KEY and Realtime)"
            )
            await self.db.execute(
                "raise_alert",
                {
                    "level": "warning",
                    "kind": "doorbell_down",
                    "dedupe_key": key,
                    "message": message,
                    "details": Jsonb(
                        {
                            "worker_id": self.worker.worker_id,
                            "down_since": _wall_at(down_since, now).isoformat(),
                        }
                    ),
                },
            )
            return [AlertChange("raised", key, message)]
        if self._bell_open and connected:
            took = now - (self._bell_down_mono if self._bell_down_mono is not None else now)
            reason = f"reconnected after {format_duration(took)}"
            self._bell_open = False
            self._bell_down_mono = None
            if await self.db.fetchval("close_alert", {"dedupe_key": key, "reason": reason}):
                return [AlertChange("resolved", key, reason)]
        return []

    # -- rejected configs -------------------------------------------------------------------------
    async def _check_configs(self) -> list[AlertChange]:
        """Resolve `config_rejected:<key>` once the stored value validates (also after a restart,
        or when another replica saw the fix first)."""
        open_rows = await self.db.fetch("open_alerts_of_kind", {"kind": "config_rejected"})
        if not open_rows:
            return []
        keys = {
            r["dedupe_key"]: (r["details"] or {}).get("key") or _key_suffix(r["dedupe_key"])
            for r in open_rows
        }
        stored = {
            r["key"]: r["value"]
            for r in await self.db.fetch("config_values", {"keys": list(keys.values())})
        }
        changes = []
        for dedupe_key, key in keys.items():
            model = CONFIG_MODELS.get(key)
            if model is None:
                continue
            if key in stored:
                try:
                    model.model_validate(stored[key])
                except ValidationError:
                    continue
                reason = f"configs.{key} now holds a valid value"
            else:
                reason = f"configs.{key} was removed: the defaults apply"
            if await self.db.fetchval("close_alert", {"dedupe_key": dedupe_key, "reason": reason}):
                changes.append(AlertChange("resolved", dedupe_key, reason))
        return changes

    async def _on_stop(self) -> None:
        """A stopping worker's doorbell is no longer anyone's problem."""
        if not self._bell_open:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.db.fetchval(
                    "close_alert", {"dedupe_key": self._bell_key, "reason": "the worker stopped"}
                ),
                2.0,
            )
