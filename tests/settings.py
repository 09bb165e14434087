"""Settings for tests: fake credentials that the sandbox stand-ins accept."""

from __future__ import annotations

from typing import Any

from sandbox.stack import CREDENTIALS
from worker.settings import Settings

FAKE_SECRETS = CREDENTIALS


def make_settings(dsn: str, **overrides: Any) -> Settings:
    from sandbox.keys import SERVICE_ROLE_KEY

    values: dict[str, Any] = {
        **FAKE_SECRETS,
        "supabase_url": "http://127.0.0.1:9",
        "supabase_key": SERVICE_ROLE_KEY,
        "database_url": dsn,
        "http_host": "127.0.0.1",
        "http_port": 0,
        "poll_interval_s": 0.5,
        "doorbell_enabled": False,
        "shutdown_grace_s": 5.0,
        # The grace period must cover a call to X (connect + read timeouts).
        "x_connect_timeout_s": 1.0,
        "x_timeout_s": 3.0,
        "environment": "test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
