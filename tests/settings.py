"""Settings for tests: fake credentials that the sandbox stand-ins accept."""

from __future__ import annotations

from typing import Any

from worker.settings import Settings

FAKE_SECRETS = {
    "x_api_key": "sandbox-consumer-key-9f3a",
    "x_api_secret": "sandbox-consumer-secret-5be1c0",
    "x_access_token": "1000-sandbox-access-token-77d2",
    "x_access_token_secret": "sandbox-access-secret-a41f9e",
    "x_bearer_token": "sandbox-bearer-token-c03e1d",
    "openai_api_key": "sk-sandbox-openai-key-3b8e2f",
}


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
        "environment": "test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
