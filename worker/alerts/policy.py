"""Alert timings and thresholds, and the small pieces the monitor and the webhook share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WEBHOOK_KIND = "alert_webhook"  # the webhook's own trouble: shown in status, never sent to it


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


def format_duration(seconds: float) -> str:
    """`45s`, `3m 05s`, `2h 10m`."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"
