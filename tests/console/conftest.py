"""Console fixtures: a worker serving the console against the sandbox, and one headless Chromium.

The browser is Debian's Chromium driven by PyPI's playwright (`scripts/chromium.sh` installs it;
`make test` runs that first). One browser for the whole session; each test gets a fresh context
(its own cookies) and a fresh worker on a fresh database.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg.rows import dict_row

from sandbox.openai_api import ChatRequest
from sandbox.stack import SandboxStack
from tests.workers import running
from worker.console import console_mount
from worker.console.auth import hash_password
from worker.runtime.worker import Worker

CHROMIUM = os.environ.get("CHIRPBASE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "console"


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/chromium.sh` (make test does)")
    playwright = await async_playwright().start()
    chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        await chromium.close()
        await playwright.stop()


def tweet_writer(request: ChatRequest) -> dict[str, str]:
    """Answers generation prompts in character, a different tweet per topic."""
    topic = "Postgres"
    for line in request.user.splitlines():
        if line.lower().startswith("topic:"):
            topic = line.split(":", 1)[1].strip() or topic
    return {
        "text": f"On {topic}: measure first, then tune. The planner is smarter than a hunch.",
        "alt_text": f"An illustration about {topic}: a rising chart beside an elephant.",
        "image_prompt": f"clean illustration about {topic}, soft colours, no text",
    }


@dataclass
class ConsoleRun:
    worker: Worker
    stack: SandboxStack
    conn: psycopg.Connection
    base: str  # http://127.0.0.1:PORT/console
    health: str  # http://127.0.0.1:PORT
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def console_run(
    admin_dsn: str, dsn: str, conn: psycopg.Connection, password_hash: str
) -> AsyncIterator[ConsoleRun]:
    async with SandboxStack(admin_dsn) as stack:
        stack.openai.set_chat_responder(tweet_writer)
        settings = stack.settings(
            dsn,
            doorbell_enabled=True,
            poll_interval_s=1.0,
            console_password_hash=password_hash,
            console_cookie_secure=False,
            environment="sandbox",
        )
        worker = Worker(settings)
        worker.mount(console_mount(settings, health=worker.health))
        async with running(worker):
            port = worker.mount_ports["console"]
            yield ConsoleRun(
                worker,
                stack,
                conn,
                f"http://127.0.0.1:{port}/console",
                f"http://127.0.0.1:{worker.http_port}",
            )


async def http_login(http: aiohttp.ClientSession, base: str, password: str = PASSWORD) -> str:
    """Log in with plain HTTP; returns the CSRF token pages carry."""
    async with http.get(f"{base}/login") as r:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
    assert token is not None
    async with http.post(
        f"{base}/login",
        data={"password": password, "csrf_token": token.group(1), "next": "/console/inbox"},
        allow_redirects=False,
    ) as r:
        assert r.status == 303, await r.text()
    async with http.get(f"{base}/inbox", headers={"Accept": "text/html"}) as r:
        page = await r.text()
        assert r.status == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found is not None
    return found.group(1)


def row(conn: psycopg.Connection, sql: str, *args: Any) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(sql, args or None).fetchone()
    assert found is not None, sql
    return found


@pytest.fixture
async def page(browser: Any, console_run: ConsoleRun) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()

    def on_console(message: Any) -> None:
        if message.type in ("error", "warning"):
            console_run.errors.append(f"{message.type}: {message.text} ({page.url})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: console_run.errors.append(f"pageerror: {exc} ({page.url})"))
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        await context.close()


async def log_in(page: Any, base: str) -> None:
    await page.goto(f"{base}/inbox")
    assert page.url.startswith(f"{base}/login")  # no session: the login page, then back
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{base}/inbox")
