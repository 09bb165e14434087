"""Pydantic models for the `configs` rows: what each key means and its defaults.

The database refuses values of the wrong shape cheaply (validate_config); these models are the
full check. Defaults mirror the rows the migrations insert, so a missing key behaves the same as
a fresh project.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_cron(expr: str) -> str:
    parts = expr.split()
    if len(parts) == 2 and parts[1] == "seconds" and parts[0].isdigit():
        return expr  # pg_cron >= 1.5 interval syntax
    if len(parts) != 5:
        raise ValueError(
            f'must be a cron expression with 5 fields (UTC) like "0 9 * * *", got "{expr}"'
        )
    return expr


class Persona(_Config):
    """Who the account is: the generation prompt is built from this."""

    name: str = "chirpbase"
    description: str = (
        "A friendly account that shares short, useful notes about building software with "
        "Postgres and Python."
    )
    tone: str = "warm, concise, curious; no hype"
    language: str = Field(default="en", min_length=2, max_length=16)
    topics: list[str] = Field(default_factory=lambda: ["Postgres tips", "Python tips"])
    examples: list[str] = Field(default_factory=list, max_length=20)


class Schedule(_Config):
    """Cadence of the pg_cron schedules (UTC). Changes reschedule pg_cron immediately."""

    enabled: bool = True
    generate_cron: str = "0 9,13,18 * * *"
    with_image: bool = False
    poll_mentions_cron: str = "* * * * *"
    collect_stats_cron: str = "0 * * * *"
    job_retention_days: int = Field(default=7, ge=1, le=3650)

    @field_validator("generate_cron", "poll_mentions_cron", "collect_stats_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _check_cron(v)


class Generation(_Config):
    """How tweets are written: models, checks and the approval gate."""

    text_model: str = "gpt-5.4-mini"
    image_model: str = "gpt-image-1.5"
    moderation_model: str = "omni-moderation-latest"
    image: bool = False
    image_size: Literal["1024x1024", "1536x1024", "1024x1536", "auto"] = "1024x1024"
    style: str = "clean illustration, soft colours, no text"
    hashtags: list[str] = Field(default_factory=list, max_length=10)
    banned_words: list[str] = Field(default_factory=list)
    max_attempts: int = Field(default=3, ge=1, le=10)
    similarity_threshold: float = Field(default=0.6, ge=0, le=1)
    recent_window: int = Field(default=20, ge=0, le=500)
    require_approval: bool = False
    alt_text: bool = True


class Engagement(_Config):
    """Auto-liking replies and mentions."""

    auto_like: bool = True
    like_mentions: bool = True
    daily_like_cap: int = Field(default=200, ge=0, le=100_000)
    skip_authors: list[str] = Field(default_factory=list)
    blocked_keywords: list[str] = Field(default_factory=list)


class Quotas(_Config):
    """X plan and budgets. Caps come from the plan preset unless overridden (SQL quota_caps())."""

    plan: Literal["free", "basic", "pro", "pay_per_use"] = "pay_per_use"
    monthly_post_cap: int | None = Field(default=None, ge=0)
    monthly_read_cap: int | None = Field(default=None, ge=0)
    alert_threshold: float = Field(default=0.8, ge=0.01, le=1)
    cost_per_post_usd: float = Field(default=0.01, ge=0, le=100)
    cost_per_read_usd: float = Field(default=0.005, ge=0, le=100)
    openai_monthly_budget_usd: float | None = Field(default=20, ge=0)


class Alerts(_Config):
    """Where alerts go besides the `alerts` table."""

    webhook_url: HttpUrl | None = None
    min_interval_seconds: int = Field(default=300, ge=0, le=86_400)


CONFIG_MODELS: dict[str, type[_Config]] = {
    "persona": Persona,
    "schedule": Schedule,
    "generation": Generation,
    "engagement": Engagement,
    "quotas": Quotas,
    "alerts": Alerts,
}


def validate_config(key: str, value: object) -> _Config:
    """Validate one config document; raises pydantic.ValidationError or KeyError (unknown key)."""
    model = CONFIG_MODELS[key]
    return model.model_validate(value)
