"""Stand-ins and services for the generate_tweet tests: OpenAI and Storage stand-ins served
in-process, real clients, a real database per test."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from aiohttp import web

from sandbox.openai_api import OpenAIState, RunningServer, serve
from sandbox.storage import STATE_KEY, StorageState, create_app
from tests.settings import FAKE_SECRETS, make_settings
from worker.config.live import LiveConfig
from worker.db import Database
from worker.queue import JobQueue
from worker.runtime.services import Services
from worker.settings import Settings


@dataclass
class StorageServer:
    url: str
    state: StorageState


@pytest.fixture
async def openai_server() -> AsyncIterator[RunningServer]:
    async with serve(OpenAIState(api_keys=[FAKE_SECRETS["openai_api_key"]])) as server:
        yield server


@pytest.fixture
async def storage_server(dsn: str, tmp_path: Path) -> AsyncIterator[StorageServer]:
    # The public URL is part of the app, so bind the port before creating it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(dsn, public_base_url=url, data_dir=tmp_path / "storage")
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield StorageServer(url=url, state=app[STATE_KEY])
    finally:
        await runner.cleanup()


@pytest.fixture
def settings(dsn: str, openai_server: RunningServer, storage_server: StorageServer) -> Settings:
    return make_settings(
        dsn,
        openai_base_url=openai_server.base_url,
        supabase_url=storage_server.url,
        poll_interval_s=0.1,
    )


@pytest.fixture
async def services(settings: Settings, conn: psycopg.Connection) -> AsyncIterator[Services]:
    """Real Services (database pool, live config, queue, lazily built API clients)."""
    db = Database(settings.database_url.get_secret_value(), min_size=1, max_size=6, name="gen-test")
    await db.open()
    services = Services(settings, db, JobQueue(db, "gen-test"), LiveConfig(db))
    await services.config.reload()
    try:
        yield services
    finally:
        await services.aclose()
        await db.close()
