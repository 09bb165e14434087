"""The whole sandbox in one process: X, OpenAI and Supabase (Realtime + Storage) stand-ins.

`SandboxStack` starts each stand-in on a free loopback port and hands out worker `Settings`
that point at them with credentials they accept. Tests, benchmarks and `make demo` use it;
none of it ever talks to the real services.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.gateway import create_gateway
from sandbox.keys import SERVICE_ROLE_KEY
from sandbox.openai_api import OpenAIState
from sandbox.openai_api import create_app as create_openai_app
from sandbox.ports import is_addr_in_use
from sandbox.x_api import XState
from sandbox.x_api import create_app as create_x_app

BOT_USER_ID = "1600000000000000001"

# Fake credentials the stand-ins are configured to accept. Obviously not real secrets.
CREDENTIALS = {
    "x_api_key": "sandbox-consumer-key-9f3a",
    "x_api_secret": "sandbox-consumer-secret-5be1c0",
    "x_access_token": f"{BOT_USER_ID}-sandbox-access-token-77d2",
    "x_access_token_secret": "sandbox-access-secret-a41f9e",
    "x_bearer_token": "sandbox-bearer-token-c03e1d",
    "openai_api_key": "sk-sandbox-openai-key-3b8e2f",
}


def make_x_state(**overrides: Any) -> XState:
    """An X stand-in account that accepts CREDENTIALS."""
    values: dict[str, Any] = {
        "consumer_key": CREDENTIALS["x_api_key"],
        "consumer_secret": CREDENTIALS["x_api_secret"],
        "access_token": CREDENTIALS["x_access_token"],
        "access_token_secret": CREDENTIALS["x_access_token_secret"],
        "bearer_token": CREDENTIALS["x_bearer_token"],
        "user_id": BOT_USER_ID,
        "username": "chirpbase_bot",
    }
    values.update(overrides)
    return XState(**values)


def make_openai_state(**overrides: Any) -> OpenAIState:
    values: dict[str, Any] = {"api_keys": [CREDENTIALS["openai_api_key"]]}
    values.update(overrides)
    return OpenAIState(**values)


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class SandboxStack:
    """Start with `async with SandboxStack(dsn) as stack:`; `stack.settings()` for a worker.

    `dsn` is the database the Realtime and Storage stand-ins serve (a role that may read the
    WAL and bypasses RLS, like Supabase's own services).
    """

    dsn: str
    x: XState = field(default_factory=make_x_state)
    openai: OpenAIState = field(default_factory=make_openai_state)
    realtime_options: dict[str, Any] | None = None
    x_url: str = ""
    openai_url: str = ""
    supabase_url: str = ""
    gateway: web.Application | None = None
    _runners: list[web.AppRunner] = field(default_factory=list)

    async def start(self) -> SandboxStack:
        runner, self.x_url = await _start(create_x_app(self.x))
        self._runners.append(runner)
        runner, self.openai_url = await _start(create_openai_app(self.openai))
        self._runners.append(runner)
        # The gateway builds public Storage URLs from its own address, so it needs its port before
        # it is created: pick a free one, then bind it. Another process can take the port in
        # between; then pick again.
        for attempt in range(5):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            self.supabase_url = f"http://127.0.0.1:{port}"
            self.gateway = create_gateway(
                self.dsn, public_base_url=self.supabase_url, realtime_options=self.realtime_options
            )
            runner = web.AppRunner(self.gateway, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            try:
                await web.TCPSite(runner, "127.0.0.1", port).start()
            except OSError as exc:
                await runner.cleanup()
                if not is_addr_in_use(exc) or attempt == 4:
                    raise
                continue
            self._runners.append(runner)
            return self
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        while self._runners:
            await self._runners.pop().cleanup()

    async def __aenter__(self) -> SandboxStack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def env(self, database_url: str) -> dict[str, str]:
        """Environment variables for a worker process (subprocess tests, the demo)."""
        env = {k.upper(): v for k, v in CREDENTIALS.items()}
        env.update(
            {
                "X_API_BASE_URL": self.x_url,
                "OPENAI_BASE_URL": f"{self.openai_url}/v1",
                "SUPABASE_URL": self.supabase_url,
                "SUPABASE_KEY": SERVICE_ROLE_KEY,
                "DATABASE_URL": database_url,
                "ENVIRONMENT": "sandbox",
            }
        )
        return env

    def settings(self, database_url: str, **overrides: Any) -> Any:
        """Worker Settings pointing at this stack."""
        from worker.settings import Settings

        values: dict[str, Any] = {k.lower(): v for k, v in self.env(database_url).items()}
        values.update(
            {
                "http_host": "127.0.0.1",
                "http_port": 0,
                "poll_interval_s": 2.0,
                "shutdown_grace_s": 5.0,
                # Loopback stand-ins answer at once: short timeouts, which the grace covers.
                "x_connect_timeout_s": 1.0,
                "x_timeout_s": 3.0,
            }
        )
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class ThreadedSandbox:
    """A SandboxStack on its own event loop in a background thread.

    For callers that block (synchronous tests driving worker subprocesses, the demo's
    subprocess mode): the stand-ins keep answering while the caller waits.
    """

    def __init__(self, dsn: str, **kwargs: Any):
        self.stack = SandboxStack(dsn, **kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SandboxStack:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(started.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="sandbox", daemon=True)
        self._thread.start()
        started.wait(10)
        asyncio.run_coroutine_threadsafe(self.stack.start(), self._loop).result(30)
        return self.stack

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the sandbox's loop (for state that is not thread-safe)."""
        assert self._loop is not None

        async def _call() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(_call(), self._loop).result(30)

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self.stack.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
