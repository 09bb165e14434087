"""Process settings: secrets and endpoints from the environment (or `.env`).

Behaviour (persona, cadence, quotas ...) is not here: it lives in the `configs` table so it can
change live. Names follow the seed's contract (see DESIGN.md).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the worker needs from its environment, validated at start-up."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # X API v2 (OAuth 1.0a user context + app bearer token)
    x_api_key: SecretStr
    x_api_secret: SecretStr
    x_access_token: SecretStr
    x_access_token_secret: SecretStr
    x_bearer_token: SecretStr
    x_api_base_url: str = "https://api.twitter.com"
    # How long a call to X may take: to connect, then between bytes of the answer.
    x_connect_timeout_s: float = Field(default=5.0, gt=0)
    x_timeout_s: float = Field(default=30.0, gt=0)

    # OpenAI
    openai_api_key: SecretStr
    openai_base_url: str | None = None

    # Supabase: project URL (Realtime, Storage) and the service-role key
    supabase_url: str
    supabase_key: SecretStr
    # Direct or session-pooler connection string: the worker needs real sessions.
    database_url: SecretStr

    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    environment: str = "production"

    # Runtime knobs
    worker_id: str | None = None
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=0, le=65535)
    poll_interval_s: float = Field(default=15.0, gt=0)
    # Overrides every kind's lease (seconds) when set; kinds have their own defaults.
    lease_s: float | None = Field(default=None, ge=1)
    # On SIGTERM, how long running jobs may finish. It must cover X's connect + read timeouts:
    # a post already sent to X is waited for, never handed back while its outcome is unknown,
    # and no write to X starts that could not end within it.
    shutdown_grace_s: float = Field(default=40.0, ge=0)
    # After an unknown outcome (a lost answer, a crash mid-call), how long X's timeline may take
    # to show the post: "not posted" is concluded only once it has passed.
    reconcile_window_s: float = Field(default=60.0, ge=0)
    health_grace_s: float = Field(default=60.0, ge=0)
    doorbell_enabled: bool = True
    db_pool_max: int = Field(default=10, ge=2)
    # Worker sessions: a statement waiting longer than this on a row lock, or running longer
    # than that, fails (the job retries, a db_stall alert says why) instead of stalling silently.
    db_lock_timeout_s: float = Field(default=5.0, gt=0)
    db_statement_timeout_s: float = Field(default=30.0, gt=0)

    # Operator console (worker/console): off unless a password hash is set.
    # `chirpbase console hash-password` prints one (argon2id).
    console_password_hash: SecretStr | None = None
    # Signs session cookies; when unset, a key is derived from SUPABASE_KEY and the password
    # hash (stable across replicas and restarts; changing the password ends every session).
    console_session_secret: SecretStr | None = None
    # None: under /console on HTTP_PORT beside /health; a port: a listener of its own.
    console_port: int | None = Field(default=None, ge=0, le=65535)
    console_host: str | None = None  # its own listener's host (default HTTP_HOST)
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # Mark the session cookie Secure (sent over HTTPS only). Turn off only for plain-HTTP use
    # on localhost or a trusted network.
    console_cookie_secure: bool = True

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _grace_covers_a_call_to_x(self) -> Settings:
        call_s = self.x_connect_timeout_s + self.x_timeout_s
        if self.shutdown_grace_s < call_s:
            raise ValueError(
                f"SHUTDOWN_GRACE_S ({self.shutdown_grace_s:g} s) must cover X's connect and read "
                f"timeouts (X_CONNECT_TIMEOUT_S + X_TIMEOUT_S = {call_s:g} s): a post sent to X "
                "at shutdown must be able to finish before its job is handed back"
            )
        return self

    @field_validator("supabase_url", "x_api_base_url", "openai_base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/") if v else v

    def secret_values(self) -> list[str]:
        """Every secret this process holds, for redaction in logs and errors."""
        out: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
        from urllib.parse import urlsplit

        password = urlsplit(self.database_url.get_secret_value()).password
        if password:
            out.append(password)
        return [s for s in out if len(s) >= 4]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()  # type: ignore[call-arg]
