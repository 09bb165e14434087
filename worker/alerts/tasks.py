"""The alert tasks one worker runs: the condition monitor and the webhook notifier."""

from __future__ import annotations

import asyncio
from typing import Any

from worker.alerts.monitor import AlertMonitor
from worker.alerts.policy import AlertPolicy
from worker.alerts.webhook import AlertNotifier


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
