"""The operator console: a web page to approve, plan and watch, served by the worker process.

Server-rendered (aiohttp + Jinja2, a little plain JavaScript, no build step). Every page reads
and every action writes through `worker.ops.operator.Operator`, the functions the CLI uses, so
the console keeps no state of its own: Postgres stays the truth. It is off unless
`CONSOLE_PASSWORD_HASH` is set; `chirpbase worker` then mounts it at `/console` beside
`/health` (or on `CONSOLE_PORT`). See README's "Operator console" and docs/operations.md for
exposing it safely.

Modules: `core` (what handlers share), `app` (locks, login, the application), `auth`
(password, cookies, CSRF, rate limit), `data` (the Operator off the event loop), `live` (the
inbox's server-sent events, rung by the doorbell), one module per page group (`inbox`,
`schedule`, `overview`, `charts`), `cron` (reading pg_cron schedules), `filters`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from worker.console.app import create_console_app
from worker.console.auth import ConsoleConfigError, derive_key
from worker.console.core import Console, ConsoleConfig, HealthFn
from worker.console.data import ConsoleDB
from worker.console.live import WATCHED
from worker.runtime.mounts import Mount

if TYPE_CHECKING:
    from worker.settings import Settings

PREFIX = "/console"

__all__ = [
    "PREFIX",
    "Console",
    "ConsoleConfig",
    "ConsoleConfigError",
    "config_from_settings",
    "console_mount",
    "create_console_app",
]


def config_from_settings(settings: Settings) -> ConsoleConfig:
    """The console's configuration; ConsoleConfigError when it cannot be enabled as set."""
    if settings.console_password_hash is None:
        raise ConsoleConfigError("CONSOLE_PASSWORD_HASH is not set")
    # Quotes kept by `docker run --env-file` (which takes values literally) are not the hash.
    password_hash = settings.console_password_hash.get_secret_value().strip().strip("'\"")
    secret = settings.console_session_secret
    key = derive_key(
        secret.get_secret_value() if secret else None,
        settings.supabase_key.get_secret_value(),
        password_hash,
    )
    storage = urlsplit(settings.supabase_url)
    return ConsoleConfig(
        password_hash=password_hash,
        signing_key=key,
        session_ttl_s=settings.console_session_hours * 3600,
        cookie_secure=settings.console_cookie_secure,
        image_origins=(f"{storage.scheme}://{storage.netloc}",),
        prefix=PREFIX,
        environment=settings.environment,
    )


def console_mount(settings: Settings, *, health: HealthFn | None = None) -> Mount:
    """The console as a `Mount` for `Worker.mount()`."""
    config = config_from_settings(settings)
    console = Console(config, ConsoleDB(settings.database_url.get_secret_value()), health=health)
    return Mount(
        name="console",
        app=create_console_app(console),
        prefix=PREFIX,
        port=settings.console_port,
        host=settings.console_host,
        watch=WATCHED,
        on_ring=console.feed.ring,
    )
