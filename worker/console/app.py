"""The console's aiohttp application: the locks on every door, the login, and page rendering.

Two middlewares wrap every console response (never `/health` or `/metrics`, which live on the
parent app): `secure_headers` (CSP without inline scripts or styles, `frame-ancestors 'none'`,
nosniff, no caching of pages ...) and `guard`, which lets only the login page and the static
files through without a session (pages redirect to the login, everything else answers 401) and
refuses every POST that lacks the session's CSRF token or comes from another origin (403).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from loguru import logger

from worker.console import auth, charts, inbox, overview, schedule
from worker.console.core import CONSOLE, SESSION, STATIC_DIR, Console, ConsoleConfig, Handler

# -- middlewares ----------------------------------------------------------------------------


def _csp(config: ConsoleConfig) -> str:
    images = " ".join(("'self'", "data:", *config.image_origins))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; manifest-src 'self'"
    )


@web.middleware
async def secure_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE]
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    h = response.headers
    h["Content-Security-Policy"] = _csp(console.config)
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "same-origin"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Cross-Origin-Resource-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if console.config.cookie_secure:
        h["Strict-Transport-Security"] = "max-age=31536000"
    if not request.path.startswith(f"{console.config.prefix}/static/"):
        h["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


def public_paths(prefix: str) -> tuple[str, ...]:
    """The only paths served without a session (besides the static files)."""
    return (f"{prefix}/login",)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    console = request.app[CONSOLE]
    prefix = console.config.prefix
    public = request.path in public_paths(prefix) or request.path.startswith(f"{prefix}/static/")
    session = console.signer.session(request.cookies.get(auth.SESSION_COOKIE))
    if session is not None:
        request[SESSION] = session
    changes = request.method not in ("GET", "HEAD", "OPTIONS")
    if changes and not _same_origin(request):
        raise web.HTTPForbidden(text="cross-origin request refused")
    if public:
        return await handler(request)
    if session is None:
        if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
            next_path = request.path_qs if request.path.startswith(prefix) else prefix
            raise web.HTTPSeeOther(console.url("login", next=next_path))
        raise web.HTTPUnauthorized(
            text="log in first", headers={"WWW-Authenticate": 'FormLogin realm="console"'}
        )
    if changes:
        token = request.headers.get("X-CSRF-Token")
        if token is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            token = (await request.post()).get("csrf_token")  # type: ignore[assignment]
        if not console.signer.check_csrf(session, token if isinstance(token, str) else None):
            raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page")
    return await handler(request)


def _same_origin(request: web.Request) -> bool:
    """A POST from a page of another site is refused even before its token is checked."""
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    return urlsplit(origin).netloc == request.host


# -- login ----------------------------------------------------------------------------------


def _cookie_args(console: Console, max_age: int) -> dict[str, Any]:
    return {
        "max_age": max_age,
        "path": console.config.prefix,
        "httponly": True,
        "samesite": "Strict",
        "secure": console.config.cookie_secure,
    }


def _safe_next(console: Console, value: Any) -> str:
    prefix = console.config.prefix
    text = str(value or "")
    if (
        text.startswith(f"{prefix}/")
        and not text.startswith("//")
        and "\\" not in text
        and not text.startswith(f"{prefix}/login")
    ):
        return text
    return console.url("inbox")


async def login_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if request.get(SESSION) is not None:
        raise web.HTTPSeeOther(_safe_next(console, request.query.get("next")))
    return _login_form(request, next_path=request.query.get("next"))


def _login_form(
    request: web.Request, *, next_path: Any, error: str | None = None, status: int = 200
) -> web.Response:
    console = request.app[CONSOLE]
    nonce = console.signer.login_nonce()
    insecure = (
        console.config.cookie_secure
        and request.scheme != "https"
        and (request.headers.get("X-Forwarded-Proto", "") != "https")
    )
    response = console.render(
        request,
        "login.html",
        status=status,
        login_token=console.signer.login_token(nonce),
        next_path=_safe_next(console, next_path),
        error=error,
        insecure_transport=insecure,
    )
    response.set_cookie(auth.LOGIN_COOKIE, nonce, **_cookie_args(console, auth.LOGIN_COOKIE_TTL_S))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    client = request.remote or "?"
    form = await request.post()
    wait = console.limiter.retry_after(client, time.monotonic())
    if wait is not None:
        logger.warning("console: login refused for {} (rate limited)", client)
        response = _login_form(
            request,
            next_path=form.get("next"),
            error=f"Too many failed logins. Try again in {int(wait) + 1} seconds.",
            status=429,
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    if not console.signer.check_login_token(
        request.cookies.get(auth.LOGIN_COOKIE), _text(form.get("csrf_token"))
    ):
        return _login_form(
            request,
            next_path=form.get("next"),
            error="This login form expired. Enter the password again.",
            status=403,
        )
    password = _text(form.get("password")) or ""
    ok = bool(password) and await asyncio.to_thread(
        auth.verify_password, console.config.password_hash, password[:1024]
    )
    if not ok:
        console.limiter.failed(client, time.monotonic())
        logger.warning("console: failed login from {}", client)
        return _login_form(request, next_path=form.get("next"), error="Wrong password.", status=401)
    console.limiter.succeeded(client)
    cookie, session = console.signer.issue()
    logger.info("console: login from {} (session until {})", client, session.expires_at)
    response = web.HTTPSeeOther(_safe_next(console, form.get("next")))
    response.set_cookie(
        auth.SESSION_COOKIE, cookie, **_cookie_args(console, int(console.config.session_ttl_s))
    )
    response.del_cookie(auth.LOGIN_COOKIE, path=console.config.prefix)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    response = web.HTTPSeeOther(console.url("login"))
    response.del_cookie(auth.SESSION_COOKIE, path=console.config.prefix)
    raise response


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(request.app[CONSOLE].url("inbox"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# -- the application ------------------------------------------------------------------------


def create_console_app(console: Console) -> web.Application:
    """The console as an aiohttp app, to mount under `console.config.prefix`."""
    app = web.Application(middlewares=[secure_headers, guard], client_max_size=256 * 1024)
    app[CONSOLE] = console
    app.router.add_get("/", home, name="home")
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout, name="logout")
    app.router.add_get("/events", console.feed.stream, name="events")
    inbox.add_routes(app)
    schedule.add_routes(app)
    overview.add_routes(app)
    charts.add_routes(app)
    app.router.add_static("/static", STATIC_DIR, name="static")

    async def startup(_app: web.Application) -> None:
        await console.db.open()
        console.feed.start()

    async def shutdown(_app: web.Application) -> None:
        await console.feed.close()  # open event streams end now, not at the shutdown timeout

    async def cleanup(_app: web.Application) -> None:
        await console.db.close()

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    return app
