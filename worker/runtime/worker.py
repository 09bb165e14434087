"""The worker process: database, live config, doorbell, claim loop, health, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from aiohttp import web
from loguru import logger

from worker import jobs, metrics
from worker.alerts.tasks import WorkerAlerts
from worker.config.live import LiveConfig
from worker.db import Database
from worker.logs import redact
from worker.migrate import discover
from worker.queue import JobQueue
from worker.runtime.health import create_health_app, serve
from worker.runtime.loop import ClaimLoop
from worker.runtime.mounts import Mount
from worker.runtime.services import Services
from worker.settings import Settings

VERSION = "0.1.0"


class StartupError(Exception):
    """Start-up cannot continue; the message says what to fix."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker process. `await Worker(settings).run()` until SIGTERM/SIGINT or `stop()`."""

    def __init__(self, settings: Settings, *, kinds: list[str] | None = None):
        self.settings = settings
        self.worker_id = settings.worker_id or default_worker_id()
        self.db = Database(
            settings.database_url.get_secret_value(),
            min_size=1,
            max_size=settings.db_pool_max,
            name=f"chirpbase-worker-{self.worker_id}"[:60],
            lock_timeout_s=settings.db_lock_timeout_s,
            statement_timeout_s=settings.db_statement_timeout_s,
        )
        # One connection of its own for lease heartbeats (see JobQueue).
        self.lease_db = Database(
            settings.database_url.get_secret_value(),
            min_size=1,
            max_size=1,
            name=f"chirpbase-leases-{self.worker_id}"[:60],
            lock_timeout_s=settings.db_lock_timeout_s,
            statement_timeout_s=settings.db_statement_timeout_s,
        )
        self.config = LiveConfig(self.db)
        queue = JobQueue(self.db, self.worker_id, lease_db=self.lease_db)
        self.services = Services(settings, self.db, queue, self.config)
        registry = jobs.load_all()
        wanted = kinds or list(registry)
        unknown = sorted(set(wanted) - set(registry))
        if unknown:
            raise StartupError(f"unknown job kinds: {', '.join(unknown)}")
        specs = {k: registry[k] for k in wanted}
        if settings.lease_s:
            lease = timedelta(seconds=settings.lease_s)
            specs = {k: dataclasses.replace(spec, lease=lease) for k, spec in specs.items()}
        self.loop = ClaimLoop(
            self.services,
            specs,
            poll_interval_s=settings.poll_interval_s,
            shutdown_grace_s=settings.shutdown_grace_s,
        )
        self.doorbell: Any = None
        self.ready = asyncio.Event()
        self.http_port: int | None = None
        self.started_at = time.monotonic()
        self.db_up = False
        self.db_down_since: float | None = time.monotonic()
        self._config_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._status: dict[str, Any] = {"queue": {}, "quota": [], "cost": {}}
        self.mounts: list[Mount] = []
        self.mount_ports: dict[str, int] = {}
        self._mount_runners: list[Any] = []
        self.stopped = False  # set once shut down (a stopped worker is not a degraded one)
        self.alerts = WorkerAlerts(self)  # alert conditions + webhook (worker/alerts/)

    # -- start-up ---------------------------------------------------------------------------
    async def _check_database(self) -> None:
        try:
            await self.db.open(wait=True, wait_s=5)
            await self.lease_db.open(wait=True, wait_s=5)
        except Exception as exc:
            raise StartupError(
                "cannot reach the database at DATABASE_URL "
                f"({redact(type(exc).__name__)}); check the connection string and network"
            ) from None
        try:
            applied = {r["version"] for r in await self.db.fetch("applied_migrations")}
        except Exception:
            applied = set()
        missing = [m.version for m in discover() if m.version not in applied]
        if missing:
            raise StartupError(
                f"database schema is not up to date ({len(missing)} migration(s) pending, first "
                f"{missing[0]}): run `supabase db push` or `chirpbase db migrate`"
            )
        self._mark_db(True)

    def _mark_db(self, up: bool) -> None:
        if up and not self.db_up:
            self.db_down_since = None
        elif not up and self.db_up:
            self.db_down_since = time.monotonic()
        self.db_up = up
        metrics.DB_UP.set(1 if up else 0)

    def mount(self, mount: Mount) -> None:
        """Serve another interface from this process (call before `run()`/`start()`)."""
        if self.ready.is_set():
            raise RuntimeError("mount() must be called before the worker starts")
        if any(m.name == mount.name for m in self.mounts):
            raise ValueError(f"a mount named {mount.name!r} exists already")
        self.mounts.append(mount)

    def _on_ring(self, table: str, record: dict[str, Any]) -> None:
        if table in ("configs", "*"):
            self._config_dirty.set()
        if table in ("jobs", "configs", "*"):
            self.loop.ring(table, record)
        for mount in self.mounts:
            if mount.on_ring is not None:
                try:
                    mount.on_ring(table, record)
                except Exception:
                    logger.exception("mount {}: on_ring raised (ignored)", mount.name)

    def _start_doorbell(self) -> None:
        if not self.settings.doorbell_enabled:
            return
        from worker.runtime.doorbell import Doorbell

        self.doorbell = Doorbell(
            self.settings.supabase_url,
            self.settings.supabase_key.get_secret_value(),
            self._on_ring,
            watch=tuple(t for m in self.mounts for t in m.watch),
        )
        self._tasks.append(asyncio.create_task(self.doorbell.run(), name="doorbell"))

    async def start(self) -> None:
        """Open everything; `ready` is set when jobs can be claimed."""
        await self._check_database()
        await self.config.reload()
        app = create_health_app(self.health)
        for m in self.mounts:
            if m.port is None:
                app.add_subapp(m.prefix, m.app)
        self._runner, self.http_port = await serve(
            app, self.settings.http_host, self.settings.http_port
        )
        for m in self.mounts:
            if m.port is None:
                self.mount_ports[m.name] = self.http_port
                continue
            root = web.Application()
            root.add_subapp(m.prefix, m.app)
            runner, port = await serve(root, m.host or self.settings.http_host, m.port)
            self._mount_runners.append(runner)
            self.mount_ports[m.name] = port
        self._tasks += [
            asyncio.create_task(self._config_loop(), name="config"),
            asyncio.create_task(self._monitor_loop(), name="monitor"),
            *self.alerts.start(),
        ]
        self.ready.set()
        # Claiming works without the doorbell (polling); connect it once ready, which also keeps
        # the Realtime client's import off the start-up path.
        self._start_doorbell()
        logger.info(
            "worker {} ready in {:.0f} ms: kinds={} http_port={}",
            self.worker_id,
            (time.monotonic() - self.started_at) * 1000,
            ",".join(self.loop.specs),
            self.http_port,
        )

    # -- background loops -------------------------------------------------------------------
    async def _config_loop(self) -> None:
        while True:
            await self._config_dirty.wait()
            self._config_dirty.clear()
            try:
                self.services.apply_config(await self.config.reload())
            except Exception as exc:
                logger.warning("config reload failed: {}", redact(str(exc)))
                await asyncio.sleep(1)
                self._config_dirty.set()

    async def _monitor_loop(self) -> None:
        """Database liveness, queue depth and quota gauges, doorbell state (every few seconds)."""
        while True:
            up = await self.db.ping()
            was_down = not self.db_up
            self._mark_db(up)
            if up and was_down:
                logger.info("database is back")
                self.loop.poke()
                self._config_dirty.set()
            if up:
                with contextlib.suppress(Exception):
                    await self._refresh_status()
            if self.doorbell is not None:
                metrics.DOORBELL_UP.set(1 if self.doorbell.connected else 0)
            await asyncio.sleep(2.0 if up else 1.0)

    async def _refresh_status(self) -> None:
        queue: dict[str, dict[str, int]] = {}
        for row in await self.db.fetch("queue_depth"):
            queue.setdefault(row["kind"], {})[row["status"]] = int(row["jobs"])
            metrics.QUEUE_DEPTH.labels(row["kind"], row["status"]).set(row["jobs"])
        quota = []
        for row in await self.db.fetch("quota_use"):
            quota.append(
                {
                    "resource": row["resource"],
                    "used": float(row["used"]),
                    "cap": float(row["cap"]) if row["cap"] is not None else None,
                    "percent": float(row["percent"]) if row["percent"] is not None else None,
                }
            )
            metrics.QUOTA_USED.labels(row["resource"]).set(float(row["used"]))
            if row["cap"] is not None:
                metrics.QUOTA_CAP.labels(row["resource"]).set(float(row["cap"]))
        spend = await self.db.fetchrow("operator_month_spend") or {}
        spent = round(float(spend.get("spent_usd") or 0.0), 4)
        budget = spend.get("budget_usd")
        cost = {
            "month": str(spend.get("month")),
            "cycle_ends": str(spend.get("cycle_ends")),
            "spent_usd": spent,
            "x_usd": round(float(spend.get("x_usd") or 0.0), 4),
            "openai_usd": round(float(spend.get("openai_usd") or 0.0), 4),
            "projected_month_usd": spend.get("projected_usd"),
            "budget_usd": budget,
            "budget_percent": round(100 * spent / budget, 1) if budget else None,
        }
        self._status = {"queue": queue, "quota": quota, "cost": cost}

    # -- health -----------------------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        grace = self.settings.health_grace_s
        db_down_for = None if self.db_down_since is None else now - self.db_down_since
        bell = self.doorbell
        bell_connected = bell.connected if bell is not None else None
        bell_down_since = getattr(bell, "down_since", None) if bell is not None else None
        bell_down_for = None if bell_down_since is None else now - bell_down_since
        healthy = (db_down_for is None or db_down_for < grace) and (
            bell is None or bell_down_for is None or bell_down_for < grace
        )
        last_claim = self.loop.last_claim_at
        if self.stopped or self.loop.stopping:
            # Shutting down on purpose is neither degraded nor down.
            state = "stopped" if self.stopped else "stopping"
        elif healthy and self.db_up and bell_connected is not False:
            state = "ok"
        else:
            state = "degraded" if healthy else "down"
        body = {
            "status": state,
            "worker_id": self.worker_id,
            "version": VERSION,
            "uptime_s": round(now - self.started_at, 1),
            "database": {"up": self.db_up, "down_for_s": _round(db_down_for)},
            "doorbell": {
                "enabled": bell is not None,
                "connected": bell_connected,
                "down_for_s": _round(bell_down_for),
            },
            "last_claim_s_ago": _round(None if last_claim is None else now - last_claim),
            "running_jobs": self.loop.running_count,
            "queue": self._status["queue"],
            "quota": self._status["quota"],
            "cost": self._status["cost"],
            "config_rejected": dict(self.config.rejected),
        }
        return healthy, body

    # -- run / stop -------------------------------------------------------------------------
    def stop(self) -> None:
        self.loop.stop()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._signal, sig)
        try:
            await self.start()
            self.loop.poke()
            await self.loop.run()
        finally:
            await self._shutdown()

    def _signal(self, sig: signal.Signals) -> None:
        logger.info("{} received: finishing running jobs, claiming no more", sig.name)
        self.stop()

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.doorbell is not None:
            with contextlib.suppress(Exception):
                await self.doorbell.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for mounted in reversed(self._mount_runners):
            await mounted.cleanup()
        runner = getattr(self, "_runner", None)
        if runner is not None:
            await runner.cleanup()
        await self.services.aclose()
        await self.db.close()
        await self.lease_db.close()
        self.stopped = True
        logger.info("worker {} stopped", self.worker_id)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)
