"""Alert lifecycle in the worker: conditions checked periodically, and webhook delivery.

Alerts live in `public.alerts` (one open row per `dedupe_key`; raising again bumps
`occurrences`). Some are raised where the condition happens (SQL: dead jobs, quotas; handlers:
X/OpenAI refusals; LiveConfig: a rejected config). This module adds what needs a clock or the
worker's own eyes, in two background tasks that never touch the claim loop:

* :class:`AlertMonitor` (every `check_interval_s`): runs `evaluate_alerts()` in SQL (quota,
  dead-job, repeated-failure, X/OpenAI resolution rules), raises/resolves `doorbell_down:<worker>`
  past a grace period, resolves `config_rejected:<key>` once the stored value validates, and
  records a database outage it lived through once the database is back (nothing can be written
  while it is down, so the outage is logged then and written afterwards with its duration).
* :class:`AlertNotifier`: when `configs.alerts.webhook_url` is set, sends new alerts and
  resolutions as one Slack- and Discord-compatible JSON message, at most one message per
  `min_interval_seconds` (alerts raised meanwhile are coalesced), retrying failures with
  exponential backoff. The delivery state is one row in `alert_delivery`, so replicas share the
  rate limit and only one sends at a time. Messages go through `worker.logs.redact`.

docs/alerts.md is the operator's reference for every kind and rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from loguru import logger
from prometheus_client import Counter
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from worker.aio import wait_event
from worker.config_models import CONFIG_MODELS
from worker.db import Database, query
from worker.live_config import LiveConfig
from worker.logs import REDACTED, redact

__all__ = [
    "AlertChange",
    "AlertMonitor",
    "AlertNotifier",
    "AlertPolicy",
    "Delivery",
    "WorkerAlerts",
    "build_payload",
    "format_duration",
]

_log = logger.bind(component="alerts")

WEBHOOK_DELIVERIES = Counter(
    "chirpbase_alert_webhook_deliveries_total",
    "Alert webhook delivery attempts by outcome",
    ["outcome"],
)
ALERT_CHANGES = Counter(
    "chirpbase_alert_changes_total", "Alerts raised or resolved by the worker", ["action", "kind"]
)

USER_AGENT = "chirpbase-alerts/0.1"
WEBHOOK_KIND = "alert_webhook"  # the webhook's own trouble: shown in status, never sent to it
_KEYLIKE = re.compile(r"\b(sk-|sb_secret_|xox[abprs]-)[A-Za-z0-9_\-]{6,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}")


@dataclass(frozen=True)
class AlertPolicy:
    """Thresholds and timings (seconds). Defaults suit production; tests shrink them."""

    check_interval_s: float = 15.0
    """How often the monitor evaluates conditions."""
    failure_threshold: int = 5
    """Repeated failures: raise when a kind failed this many times ..."""
    failure_window_s: float = 900.0
    """... within this window (15 min)."""
    doorbell_grace_s: float = 60.0
    """Raise `doorbell_down` once the doorbell has been down this long."""
    database_grace_s: float = 60.0
    """Record a `database_down` alert for outages at least this long (shorter ones are logged)."""
    stale_after_s: float = 300.0
    """A worker-scoped alert its worker stopped confirming is resolved after this long."""
    webhook_poll_s: float = 5.0
    """How often the notifier looks for something to send (it is also woken on changes)."""
    webhook_timeout_s: float = 10.0
    retry_initial_s: float = 10.0
    retry_max_s: float = 900.0
    lease_s: float = 60.0
    max_lines: int = 20
    failing_after: int = 3
    """Raise the `alert_webhook` alert after this many failed deliveries in a row."""

    @classmethod
    def from_settings(cls, settings: Any) -> AlertPolicy:
        grace = float(getattr(settings, "health_grace_s", 60.0))
        return cls(doorbell_grace_s=grace, database_grace_s=grace)


@dataclass(frozen=True)
class AlertChange:
    action: str  # "raised" | "resolved" | "recorded"
    dedupe_key: str
    message: str


class WorkerLike(Protocol):
    """What the monitor reads from the worker (see worker/runtime/worker.py)."""

    worker_id: str
    db: Database
    config: LiveConfig
    db_up: bool
    db_down_since: float | None
    doorbell: Any


def format_duration(seconds: float) -> str:
    """`45s`, `3m 05s`, `2h 10m`."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"


def _wall_at(mono: float, now_mono: float | None = None) -> datetime:
    """The wall-clock time of a `time.monotonic()` reading."""
    now_mono = time.monotonic() if now_mono is None else now_mono
    return datetime.now(UTC) - timedelta(seconds=max(0.0, now_mono - mono))


def _key_suffix(dedupe_key: str) -> str:
    return dedupe_key.partition(":")[2]


# ------------------------------------------------------------------------------------------------
# Monitor
# ------------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------------
# Webhook delivery
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """The outcome of one delivery attempt."""

    ok: bool
    alerts: int
    status: int | None = None
    error: str | None = None
    retry_in_s: float | None = None


@dataclass
class _Redactor:
    secrets: list[str] = field(default_factory=list)

    def __call__(self, text: str) -> str:
        text = redact(text)
        for s in self.secrets:
            if s and s in text:
                text = text.replace(s, REDACTED)
        text = _KEYLIKE.sub(lambda m: m.group(1) + REDACTED, text)
        return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


_ICONS = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
_TEXT_LIMIT = 1900  # Discord refuses `content` over 2000 characters
_LINE_LIMIT = 300


def _slack_escape(text: str) -> str:
    """Slack's three control characters (also disarms <!channel> style mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str, limit: int = _LINE_LIMIT) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def build_payload(
    rows: Sequence[dict[str, Any]],
    *,
    source: str = "chirpbase",
    secrets: Iterable[str] = (),
    max_lines: int = 20,
) -> tuple[dict[str, Any], list[int], list[int]]:
    """The webhook body for pending alert rows, and the ids it delivers (raised, resolved).

    `text` is for Slack (its control characters escaped), `content` for Discord (with mentions
    disabled); `alerts` carries the same data structured, for any other receiver.
    """
    clean = _Redactor(list(secrets))
    raised_ids: list[int] = []
    resolved_ids: list[int] = []
    lines: list[str] = []
    items: list[dict[str, Any]] = []
    for r in rows:
        resolved = r.get("resolved_at") is not None
        details = r.get("details") or {}
        message = _one_line(clean(str(r.get("message") or "")))
        occurrences = int(r.get("occurrences") or 1)
        times = f" (×{occurrences})" if occurrences > 1 else ""
        if resolved:
            resolved_ids.append(int(r["id"]))
            reason = clean(str(details.get("resolution") or ""))
            tail = f" — resolved: {_one_line(reason, 160)}" if reason else " — resolved"
            lines.append(f"✅ RESOLVED {r['kind']}: {message}{times}{tail}")
        else:
            raised_ids.append(int(r["id"]))
            level = str(r.get("level") or "warning")
            icon = _ICONS.get(level, "⚪")
            lines.append(f"{icon} {level.upper()} {r['kind']}: {message}{times}")
        items.append(
            {
                "id": int(r["id"]),
                "state": "resolved" if resolved else "raised",
                "level": r.get("level"),
                "kind": r["kind"],
                "dedupe_key": clean(str(r["dedupe_key"])),
                "message": message,
                "occurrences": occurrences,
                "created_at": _iso(r.get("created_at")),
                "resolved_at": _iso(r.get("resolved_at")),
                "resolution": clean(str(details["resolution"]))
                if resolved and details.get("resolution")
                else None,
            }
        )
    new, done = len(raised_ids), len(resolved_ids)
    parts = [f"{new} new"] if new else []
    if done:
        parts.append(f"{done} resolved")
    header = f"{source}: {', '.join(parts) or 'no change'}"
    shown: list[str] = []
    size = len(header)
    for i, line in enumerate(lines):
        left = len(lines) - i
        more = f"\n…and {left} more (chirpbase status)"
        if len(shown) >= max_lines or size + 1 + len(line) + len(more) > _TEXT_LIMIT:
            shown.append(more.strip())
            break
        shown.append(line)
        size += 1 + len(line)
    text = "\n".join([header, *shown])
    payload = {
        "text": _slack_escape(text),
        "content": text,
        "allowed_mentions": {"parse": []},
        "username": "chirpbase",
        "alerts": items,
    }
    return payload, raised_ids, resolved_ids


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class AlertNotifier:
    """Sends pending alerts to `configs.alerts.webhook_url` (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        config: LiveConfig,
        worker_id: str,
        policy: AlertPolicy,
        *,
        source: str = "chirpbase",
        secrets: Iterable[str] = (),
    ) -> None:
        self.db = db
        self.config = config
        self.worker_id = worker_id
        self.policy = policy
        self.source = source
        self.secrets = list(secrets)
        self.deliveries: list[Delivery] = []  # recent outcomes (tests, debugging)
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._ensured = False

    def wake(self) -> None:
        """Look for something to send now (a plain function: safe from any callback)."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.deliver_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    _log.warning("alert webhook: {}", self._clean(f"{type(exc).__name__}: {exc}"))
                await wait_event(self._wake, self.policy.webhook_poll_s)
                self._wake.clear()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _clean(self, text: str, url: str | None = None) -> str:
        text = _Redactor(self.secrets)(text)
        if url:
            parts = urlsplit(url)
            text = text.replace(url, "<webhook>")
            if len(parts.path) > 1:
                text = text.replace(parts.path, "/<path>")
        return text

    async def deliver_once(self) -> Delivery | None:
        """Send one message if one is due; None when there was nothing to do."""
        cfg = self.config.alerts
        if cfg.webhook_url is None:
            return None
        url = str(cfg.webhook_url)
        if not self._ensured:
            await self.db.execute("ensure_alert_delivery")
            self._ensured = True
        failures = await self.db.fetchval(
            "claim_alert_delivery",
            {
                "worker_id": self.worker_id,
                "lease_s": self.policy.lease_s,
                "min_interval_s": cfg.min_interval_seconds,
            },
        )
        if failures is None:
            return None
        try:
            return await self._deliver(url, int(failures))
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.db.execute("release_alert_delivery", {"worker_id": self.worker_id}), 2.0
                )
            raise

    async def _deliver(self, url: str, failures: int) -> Delivery | None:
        rows = await self.db.fetch("pending_alert_notifications", {"limit": 200})
        if not rows:
            await self.db.execute("release_alert_delivery", {"worker_id": self.worker_id})
            return None
        payload, raised_ids, resolved_ids = build_payload(
            rows, source=self.source, secrets=[*self.secrets, url], max_lines=self.policy.max_lines
        )
        status: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            status, retry_after, body = await self._post(url, payload)
            if not 200 <= status < 300:
                error = f"HTTP {status}" + (f": {_one_line(body, 200)}" if body else "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is None:
            async with self.db.transaction() as conn:
                await conn.execute(
                    query("mark_alerts_notified"),
                    {"raised_ids": raised_ids, "resolved_ids": resolved_ids},
                )
                await conn.execute(query("alert_delivery_succeeded"), {"worker_id": self.worker_id})
            if failures:
                await self.db.fetchval(
                    "close_alert",
                    {"dedupe_key": WEBHOOK_KIND, "reason": "the webhook accepts deliveries again"},
                )
            WEBHOOK_DELIVERIES.labels("ok").inc()
            _log.info(
                "alert webhook: delivered {} alert(s) to {}", len(rows), urlsplit(url).hostname
            )
            return self._remember(Delivery(True, len(rows), status=status))

        error = self._clean(error, url)
        attempt = failures + 1
        delay = min(self.policy.retry_max_s, self.policy.retry_initial_s * 2 ** (attempt - 1))
        if retry_after is not None:
            delay = min(max(delay, retry_after), 3600.0)
        await self.db.fetchval(
            "alert_delivery_failed",
            {"worker_id": self.worker_id, "retry_in_s": delay, "error": error},
        )
        WEBHOOK_DELIVERIES.labels("failed").inc()
        _log.warning(
            "alert webhook: delivery to {} failed ({}); attempt {}, next in {}",
            urlsplit(url).hostname,
            error,
            attempt,
            format_duration(delay),
        )
        if attempt >= self.policy.failing_after:
            await self.db.execute(
                "raise_alert",
                {
                    "level": "warning",
                    "kind": WEBHOOK_KIND,
                    "dedupe_key": WEBHOOK_KIND,
                    "message": f"alert webhook failing: {attempt} deliveries in a row ({error}); "
                    "check configs.alerts.webhook_url",
                    "details": Jsonb({"failures": attempt, "error": error}),
                },
            )
        return self._remember(
            Delivery(False, len(rows), status=status, error=error, retry_in_s=delay)
        )

    def _remember(self, delivery: Delivery) -> Delivery:
        self.deliveries = [*self.deliveries[-19:], delivery]
        return delivery

    async def _post(self, url: str, payload: dict[str, Any]) -> tuple[int, float | None, str]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.policy.webhook_timeout_s),
                headers={"User-Agent": USER_AGENT},
            )
        async with self._session.post(url, json=payload, allow_redirects=False) as resp:
            body = ""
            if not 200 <= resp.status < 300:
                with contextlib.suppress(Exception):
                    body = (await resp.content.read(500)).decode("utf-8", "replace")
            return resp.status, _retry_after(resp.headers), body


# ------------------------------------------------------------------------------------------------
# What the Worker holds
# ------------------------------------------------------------------------------------------------


class WorkerAlerts:
    """The alert tasks of one worker. Set `policy` before `start()` to change the timings."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.policy = AlertPolicy.from_settings(worker.settings)
        self.monitor: AlertMonitor | None = None
        self.notifier: AlertNotifier | None = None

    def start(self) -> list[asyncio.Task[None]]:
        w = self.worker
        settings = w.settings
        environment = getattr(settings, "environment", "") or ""
        self.notifier = AlertNotifier(
            w.db,
            w.config,
            w.worker_id,
            self.policy,
            source=f"chirpbase ({environment})" if environment else "chirpbase",
            secrets=settings.secret_values(),
        )
        self.monitor = AlertMonitor(w, self.policy, on_change=self.notifier.wake)
        return [
            asyncio.create_task(self.monitor.run(), name="alerts"),
            asyncio.create_task(self.notifier.run(), name="alert-webhook"),
        ]
