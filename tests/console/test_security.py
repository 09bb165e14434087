"""The console's locks, checked over plain HTTP against a real worker serving it.

Every route refuses a request without a session (pages redirect to the login, the rest answer
401); a state-changing request without the session's CSRF token, or from another origin, is
refused (403); wrong passwords are rate limited (429, and the right password is not even checked
meanwhile); the session cookie is HttpOnly, SameSite=Strict, scoped to /console and expires;
forged, altered and expired cookies are no session; every response carries the secure headers;
/health and /metrics are exactly as before; the console is absent unless a password hash is set,
and on CONSOLE_PORT it leaves the health port alone.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.console.conftest import PASSWORD, http_login
from tests.settings import make_settings
from tests.workers import running
from worker.console import console_mount
from worker.console.auth import SESSION_COOKIE, Signer, derive_key
from worker.runtime.worker import Worker

pytestmark = pytest.mark.timeout(90)

PARAMS = {"id": "1", "kind": "tweet", "name": "top_tweets", "filename": "console.css"}


@dataclass
class Served:
    worker: Worker
    base: str
    health: str


@pytest.fixture
async def served(dsn: str, password_hash: str) -> AsyncIterator[Served]:
    settings = make_settings(dsn, console_password_hash=password_hash, console_cookie_secure=True)
    worker = Worker(settings)
    worker.mount(console_mount(settings, health=worker.health))
    async with running(worker):
        port = worker.http_port
        yield Served(worker, f"http://127.0.0.1:{port}/console", f"http://127.0.0.1:{port}")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe=True: keep cookies for an IP address; the cookie is Secure, so over plain HTTP the
    # tests send it by hand where they need the session.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def console_routes(worker: Worker) -> list[tuple[str, str]]:
    mount = next(m for m in worker.mounts if m.name == "console")
    found = []
    for route in mount.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        assert path, info
        path = path.removeprefix("/console")
        found.append((route.method, re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: PARAMS[m[1]], path)))
    return sorted(set(found))


async def login_cookie(http: aiohttp.ClientSession, base: str) -> tuple[str, str]:
    """(session cookie value, csrf token): a real login, the Secure cookie read off the reply."""
    async with http.get(f"{base}/login") as r:
        page = await r.text()
        nonce = SimpleCookie(r.headers.getone("Set-Cookie"))["chirpbase_console_login"].value
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    async with http.post(
        f"{base}/login",
        data={"password": PASSWORD, "csrf_token": token[1], "next": "/console/money"},
        cookies={"chirpbase_console_login": nonce},
        allow_redirects=False,
    ) as r:
        assert r.status == 303 and r.headers["Location"] == "/console/money"
        cookie = SimpleCookie(r.headers.getone("Set-Cookie"))[SESSION_COOKIE].value
    async with http.get(f"{base}/inbox", cookies={SESSION_COOKIE: cookie}) as r:
        assert r.status == 200
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', await r.text())
    assert csrf is not None
    return cookie, csrf[1]


async def test_every_route_without_a_session_is_refused(
    served: Served, http: aiohttp.ClientSession
) -> None:
    routes = console_routes(served.worker)
    assert len(routes) >= 15, routes
    public = {("GET", "/login"), ("POST", "/login"), ("HEAD", "/login")}
    checked = 0
    for method, path in routes:
        if (method, path) in public or path.startswith("/static"):
            continue
        url = f"{served.base}{path}"
        async with http.request(method, url, allow_redirects=False) as r:
            assert r.status == 401, (method, path, r.status)
        if method == "GET":  # a browser asking for a page is sent to the login instead
            async with http.get(url, headers={"Accept": "text/html"}, allow_redirects=False) as r:
                assert r.status == 303, (path, r.status)
                assert r.headers["Location"].startswith("/console/login?next=")
        checked += 1
    assert checked >= 12
    for stray in ("/nope", "/inbox/../money", "/static/../app.py"):
        async with http.get(f"{served.base}{stray}", allow_redirects=False) as r:
            assert r.status in (401, 404), (stray, r.status)
            assert "chirpbase" not in (await r.text()).lower() or r.status == 401
    # The two public doors really are the only ones.
    async with http.get(f"{served.base}/login") as r:
        assert r.status == 200 and "Password" in await r.text()
    async with http.get(f"{served.base}/static/console.css") as r:
        assert r.status == 200 and r.content_type == "text/css"


async def test_state_changes_need_the_sessions_csrf_token(
    served: Served, http: aiohttp.ClientSession, conn: psycopg.Connection
) -> None:
    tweet = conn.execute(
        "insert into public.scheduled_tweets (topic) values ('csrf') returning id"
    ).fetchone()
    assert tweet is not None
    conn.execute(
        "update public.scheduled_tweets set status = 'awaiting_approval', content = 'Draft'"
        " where id = %s",
        tweet,
    )
    cookie, csrf = await login_cookie(http, served.base)
    _other_cookie, other_csrf = await login_cookie(http, served.base)
    assert csrf != other_csrf
    url = f"{served.base}/inbox/tweet/{tweet[0]}"
    jar = {SESSION_COOKIE: cookie}
    attempts: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"action": "approve"}, {}),  # no token
        ({"action": "approve", "csrf_token": "forged"}, {}),
        ({"action": "approve", "csrf_token": other_csrf}, {}),  # another session's token
        ({"action": "approve"}, {"X-CSRF-Token": other_csrf}),
        ({"action": "approve", "csrf_token": csrf}, {"Origin": "https://evil.example"}),
        ({"action": "approve", "csrf_token": csrf}, {"Sec-Fetch-Site": "cross-site"}),
    ]
    for form, headers in attempts:
        async with http.post(
            url, data=form, headers=headers, cookies=jar, allow_redirects=False
        ) as r:
            assert r.status == 403, (form, headers, r.status)
    status = conn.execute("select status from public.scheduled_tweets where id = %s", tweet)
    assert status.fetchone() == ("awaiting_approval",)  # nothing happened

    for path in ("/logout", "/api/tweet-length", f"/calendar/{tweet[0]}/cancel"):
        async with http.post(f"{served.base}{path}", cookies=jar, allow_redirects=False) as r:
            assert r.status == 403, path

    # With its own token (form field or header) the same request goes through.
    async with http.post(
        url,
        data={"action": "approve", "csrf_token": csrf},
        headers={"Origin": served.health, "Accept": "application/json"},
        cookies=jar,
    ) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["status"] == "approved"
    async with http.post(
        f"{served.base}/api/tweet-length",
        json={"text": "hi https://example.com 🐘"},
        headers={"X-CSRF-Token": csrf},
        cookies=jar,
    ) as r:
        assert r.status == 200 and (await r.json())["weighted_length"] == 2 + 1 + 23 + 1 + 2


async def test_wrong_passwords_are_rate_limited(
    served: Served, http: aiohttp.ClientSession
) -> None:
    async def attempt(password: str) -> aiohttp.ClientResponse:
        async with http.get(f"{served.base}/login") as r:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
            nonce = SimpleCookie(r.headers.getone("Set-Cookie"))["chirpbase_console_login"].value
        assert token is not None
        async with http.post(
            f"{served.base}/login",
            data={"password": password, "csrf_token": token[1]},
            cookies={"chirpbase_console_login": nonce},
            allow_redirects=False,
        ) as r:
            await r.read()
            return r

    for n in range(5):
        r = await attempt(f"wrong-{n}")
        assert r.status == 401 and SESSION_COOKIE not in r.cookies
    locked = await attempt("wrong-again")
    assert locked.status == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    right = await attempt(PASSWORD)  # not even checked while locked out
    assert right.status == 429 and SESSION_COOKIE not in right.cookies

    # A login without the form's token is refused before the password is looked at.
    async with http.post(
        f"{served.base}/login", data={"password": PASSWORD}, allow_redirects=False
    ) as r:
        assert r.status in (403, 429)


async def test_session_cookie_attributes(served: Served, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{served.base}/login") as r:
        page = await r.text()
        login_cookie_header = r.headers.getone("Set-Cookie")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    nonce = SimpleCookie(login_cookie_header)["chirpbase_console_login"].value
    assert "HttpOnly" in login_cookie_header and "SameSite=Strict" in login_cookie_header
    async with http.post(
        f"{served.base}/login",
        data={"password": PASSWORD, "csrf_token": token[1]},
        cookies={"chirpbase_console_login": nonce},
        allow_redirects=False,
    ) as r:
        header = next(h for h in r.headers.getall("Set-Cookie") if h.startswith(SESSION_COOKIE))
    morsel = SimpleCookie(header)[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["secure"] is True  # CONSOLE_COOKIE_SECURE defaults to true
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/console"
    assert int(morsel["max-age"]) == 12 * 3600
    assert morsel.value.startswith("v1.") and PASSWORD not in header


async def test_forged_altered_and_expired_cookies_are_no_session(
    served: Served, http: aiohttp.ClientSession, password_hash: str
) -> None:
    cookie, _csrf = await login_cookie(http, served.base)
    version, payload, signature = cookie.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    stranger = Signer(b"k" * 32, 3600).issue()[0]  # signed with another key
    settings = served.worker.settings
    key = derive_key(None, settings.supabase_key.get_secret_value(), password_hash)
    expired = Signer(key, 60).issue(now=1_000_000_000)[0]  # right key, long expired
    fresh = Signer(key, 60).issue()[0]
    for bad in (
        f"{version}.{payload}.{flipped}",
        f"v2.{payload}.{signature}",
        f"{version}.{payload}",
        stranger,
        expired,
        "",
        "x" * 600,
    ):
        async with http.get(
            f"{served.base}/inbox", cookies={SESSION_COOKIE: bad}, allow_redirects=False
        ) as r:
            assert r.status == 401, bad[:40]
    async with http.get(f"{served.base}/inbox", cookies={SESSION_COOKIE: fresh}) as r:
        assert r.status == 200  # the control: a cookie made with the right key works


async def test_secure_headers_on_every_console_answer(
    served: Served, http: aiohttp.ClientSession
) -> None:
    cookie, _csrf = await login_cookie(http, served.base)
    answers = []
    for path, jar in (("/login", None), ("/inbox", cookie), ("/money", None), ("/nope", cookie)):
        cookies = {SESSION_COOKIE: jar} if jar else None
        async with http.get(f"{served.base}{path}", cookies=cookies, allow_redirects=False) as r:
            answers.append((path, r.status, r.headers))
    assert [s for _p, s, _h in answers] == [200, 200, 401, 404]
    for path, _status, h in answers:
        csp = h["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, path
        assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "same-origin" and h["Cache-Control"] == "no-store"
        assert h["Strict-Transport-Security"].startswith("max-age=")
    async with http.get(f"{served.base}/inbox", cookies={SESSION_COOKIE: cookie}) as r:
        page = await r.text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # no inline code anywhere
    assert not re.search(r"\son[a-z]+=", page) and "style=" not in page


async def test_health_and_metrics_are_unaffected(
    served: Served, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{served.health}/health") as r:
        assert r.status == 200 and (await r.json())["status"] in ("ok", "degraded")
        assert "Content-Security-Policy" not in r.headers and SESSION_COOKIE not in r.cookies
    async with http.get(f"{served.health}/metrics") as r:
        assert r.status == 200 and "chirpbase_" in await r.text()


async def test_no_console_without_a_password_hash(dsn: str, http: aiohttp.ClientSession) -> None:
    worker = Worker(make_settings(dsn))
    assert worker.mounts == []
    async with running(worker):
        base = f"http://127.0.0.1:{worker.http_port}"
        async with http.get(f"{base}/console/login") as r:
            assert r.status == 404
        async with http.get(f"{base}/health") as r:
            assert r.status == 200


async def test_console_port_keeps_it_off_the_health_port(
    dsn: str, password_hash: str, http: aiohttp.ClientSession
) -> None:
    settings = make_settings(dsn, console_password_hash=password_hash, console_port=0)
    worker = Worker(settings)
    worker.mount(console_mount(settings, health=worker.health))
    async with running(worker):
        console_port = worker.mount_ports["console"]
        assert console_port != worker.http_port
        async with http.get(f"http://127.0.0.1:{worker.http_port}/console/login") as r:
            assert r.status == 404
        async with http.get(f"http://127.0.0.1:{console_port}/console/login") as r:
            assert r.status == 200
        async with http.get(f"http://127.0.0.1:{console_port}/health") as r:
            assert r.status == 404


async def test_a_bad_password_hash_stops_the_start(dsn: str) -> None:
    from worker.console import ConsoleConfigError

    with pytest.raises(ConsoleConfigError, match="not an argon2 hash"):
        console_mount(make_settings(dsn, console_password_hash="hunter2"))
    with pytest.raises(ConsoleConfigError, match="at least 32"):
        console_mount(
            make_settings(
                dsn,
                console_password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA",
                console_session_secret="short",
            )
        )


async def test_plain_http_logins_work_when_the_cookie_is_not_secure(
    dsn: str, password_hash: str
) -> None:
    settings = make_settings(dsn, console_password_hash=password_hash, console_cookie_secure=False)
    worker = Worker(settings)
    worker.mount(console_mount(settings, health=worker.health))
    async with (
        running(worker),
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        base = f"http://127.0.0.1:{worker.http_port}/console"
        token = await http_login(http, base)
        assert token
        async with http.get(f"{base}/login", allow_redirects=False) as r:
            assert r.status == 303  # already logged in
