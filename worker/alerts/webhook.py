"""Alert delivery to a Slack- or Discord-compatible webhook.

When `configs.alerts.webhook_url` is set, :class:`AlertNotifier` sends new alerts and
resolutions as one JSON message, at most one message per `min_interval_seconds` (alerts raised
meanwhile are coalesced), retrying failures with exponential backoff. The delivery state is one
row in `alert_delivery`, so replicas share the rate limit and only one sends at a time. Messages
go through `worker.logs.redact` and the worker's own secret values.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from loguru import logger
from prometheus_client import Counter
from psycopg.types.json import Jsonb

from worker.aio import wait_event
from worker.alerts.policy import WEBHOOK_KIND, AlertPolicy, format_duration
from worker.config.live import LiveConfig
from worker.db import Database, query
from worker.logs import REDACTED, redact

_log = logger.bind(component="alerts")

WEBHOOK_DELIVERIES = Counter(
    "chirpbase_alert_webhook_deliveries_total",
    "Alert webhook delivery attempts by outcome",
    ["outcome"],
)
USER_AGENT = "chirpbase-alerts/0.1"
_KEYLIKE = re.compile(r"\b(sk-|sb_secret_|xox[abprs]-)[A-Za-z0-9_\-]{6,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}")


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
