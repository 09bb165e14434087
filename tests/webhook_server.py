"""Serve the `x-webhook` edge function with Deno for a test, and sign deliveries as X does.

One place for what three suites need (the edge tests, the unsigned-delivery security test, the
webhook-to-like end-to-end test): `deno run supabase/functions/x-webhook/index.ts` on a free
loopback port against a test database, waited for until it listens, stopped with SIGTERM, and
its whole output kept (in a file, so a chatty function can never block on a full pipe) for the
caller to check that no secret was logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.waiting import wait_for_sync

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "supabase" / "functions"
DENO = ["bash", str(ROOT / "scripts" / "deno.sh")]
# Not handed to the function: the test's own settings, and X credentials it must not see.
_WITHHELD_ENV = ("CHIRPBASE_TEST_", "X_")


def sign(secret: str, body: bytes) -> str:
    """`x-twitter-webhooks-signature` (and the CRC `response_token`): sha256=base64(HMAC)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServedWebhook:
    url: str
    output: str = ""  # everything the function printed; complete once the context exits


@contextlib.contextmanager
def serve_x_webhook(*, secret: str, db_url: str) -> Iterator[ServedWebhook]:
    """Run x-webhook with `X_API_SECRET=secret` and `SUPABASE_DB_URL=db_url` until exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_WITHHELD_ENV)}
    env.update(PORT=str(port), X_API_SECRET=secret, SUPABASE_DB_URL=db_url)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as log:
        proc = subprocess.Popen(
            [
                *DENO,
                "run",
                "--config",
                str(FUNCTIONS / "deno.json"),
                "--allow-env",
                "--allow-net=127.0.0.1",
                str(FUNCTIONS / "x-webhook" / "index.ts"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        served = ServedWebhook(f"http://127.0.0.1:{port}")

        def listening() -> bool:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"x-webhook exited: {log.read()[-2000:]}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        try:
            wait_for_sync(listening, timeout=120, interval=0.05, message="x-webhook to listen")
            yield served
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.seek(0)
            served.output = log.read()


@contextlib.asynccontextmanager
async def serving_x_webhook(*, secret: str, db_url: str) -> AsyncIterator[ServedWebhook]:
    """`serve_x_webhook` for async tests: starting and stopping never block the event loop."""
    served_cm = serve_x_webhook(secret=secret, db_url=db_url)
    served = await asyncio.to_thread(served_cm.__enter__)
    try:
        yield served
    finally:
        await asyncio.to_thread(served_cm.__exit__, None, None, None)
