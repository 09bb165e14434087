"""What every console handler shares: configuration, the locks, the database, rendering."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from worker.console import auth, filters
from worker.console.data import ConsoleDB
from worker.console.live import InboxFeed
from worker.ops.operator import NotFound, OperatorError, Refused, Unavailable

STATIC_DIR = Path(__file__).resolve().parent / "static"
HealthFn = Callable[[], tuple[bool, dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NAV = (
    ("inbox", "Inbox"),
    ("calendar", "Calendar"),
    ("activity", "Activity"),
    ("money", "Money"),
    ("alerts", "Alerts"),
    ("charts", "Charts"),
)


@dataclass(frozen=True)
class ConsoleConfig:
    password_hash: str
    signing_key: bytes
    session_ttl_s: float = 12 * 3600
    cookie_secure: bool = True
    image_origins: tuple[str, ...] = ()
    prefix: str = "/console"
    environment: str = "production"


class Console:
    """What every handler shares: configuration, locks, the database, the live feed."""

    def __init__(self, config: ConsoleConfig, db: ConsoleDB, *, health: HealthFn | None = None):
        auth.check_password_hash(config.password_hash)
        self.config = config
        self.db = db
        self.health = health
        self.signer = auth.Signer(config.signing_key, config.session_ttl_s)
        self.limiter = auth.LoginLimiter()
        self.feed = InboxFeed(db)
        self.templates = Environment(
            loader=PackageLoader("worker.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        filters.install(self.templates)
        self.static_version = _static_version()

    # -- rendering --------------------------------------------------------------------------
    def render(
        self, request: web.Request, template: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        session = request.get(SESSION)
        page = self.templates.get_template(template).render(
            request=request,
            prefix=self.config.prefix,
            nav=NAV,
            current=context.pop("current", None),
            csrf_token=self.signer.csrf_token(session) if session else "",
            worker=self.worker_state(),
            environment=self.config.environment,
            static_version=self.static_version,
            now=datetime.now(UTC),
            **context,
        )
        return web.Response(text=page, status=status, content_type="text/html")

    def worker_state(self) -> dict[str, Any] | None:
        if self.health is None:
            return None
        try:
            _healthy, body = self.health()
        except Exception:
            return None
        bell = body.get("doorbell") or {}
        return {
            "status": body.get("status"),
            "database": (body.get("database") or {}).get("up"),
            "doorbell": None if not bell.get("enabled") else bool(bell.get("connected")),
            "worker_id": body.get("worker_id"),
        }

    def url(self, name: str, **query: Any) -> str:
        path = f"{self.config.prefix}/{name}"
        if query:
            path += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        return path

    async def call(self, fn: Callable[[Any], Any]) -> Any:
        return await self.db.run(fn)


CONSOLE = web.AppKey("console", Console)
SESSION = web.RequestKey("console_session", auth.Session)  # set by the guard when logged in


def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


# -- errors as pages or JSON ----------------------------------------------------------------


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def operator_error_status(exc: OperatorError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Refused):
        return 422
    if isinstance(exc, Unavailable):
        return 503
    return 500


def error_page(request: web.Request, exc: OperatorError) -> web.Response:
    status = operator_error_status(exc)
    if wants_json(request):
        return web.json_response({"ok": False, "error": str(exc)}, status=status)
    return request.app[CONSOLE].render(request, "error.html", status=status, message=str(exc))
