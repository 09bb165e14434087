"""Pydantic models for the `configs` rows: what each key means and its defaults.

The database refuses values of the wrong shape cheaply (validate_config); these models are the
full check. Defaults mirror the rows the migrations insert, so a missing key behaves the same as
a fresh project.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

#: X access tiers (`quotas.plan`). `free` is X's retired free tier, accepted for old rows.
AccessTier = Literal["pay_per_use", "basic", "pro", "enterprise", "free"]


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
    # A post with a URL costs $0.20 on X instead of $0.015 (configs.pricing.x.post_with_url):
    # drafts with a link are rejected and written again unless this is on.
    allow_urls: bool = False
    # Posts with generated images are sent with `made_with_ai: true` (X's disclosure field).
    made_with_ai: bool = True


class Engagement(_Config):
    """Auto-liking replies and mentions: off unless the operator turns it on.

    Likes happen only where the X access tier has them (Enterprise since 2026-04-20; SQL
    `x_capability_available('likes')`). X's developer guidelines say likes "must be directly
    initiated by the authenticated user" and that apps "may not offer auto-like features"
    (docs.x.com/developer-guidelines); an Enterprise operator who turns this on answers for it
    under X's agreement.
    """

    auto_like: bool = False
    like_mentions: bool = True
    daily_like_cap: int = Field(default=200, ge=0, le=100_000)
    skip_authors: list[str] = Field(default_factory=list)
    blocked_keywords: list[str] = Field(default_factory=list)


_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class QuietHours(_Config):
    """No drafts are written from `start` to `end` (local time in `timezone`; may span midnight):
    mentions that arrive meanwhile wait and are answered when the quiet hours end."""

    start: str
    end: str
    timezone: str = "UTC"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        if not _CLOCK.match(v):
            raise ValueError(f'must be a time like "22:00", got "{v}"')
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v != "UTC" and v not in available_timezones():
            raise ValueError(f'must be an IANA time zone like "Europe/Paris", got "{v}"')
        return v


class Conversation(_Config):
    """Reply drafts to people who summon the account (mention it or quote one of its posts).

    Off unless turned on. X requires its prior approval for AI-written replies
    (docs.x.com/developer-guidelines, "AI-Generated Content & Replies"): every draft waits for a
    person (`approval: required`) unless the operator records that X granted it
    (`x_ai_reply_approval_granted: true`) and asks for `approval: auto`.
    """

    enabled: bool = False
    approval: Literal["required", "auto"] = "required"
    x_ai_reply_approval_granted: bool = False
    # Drafts written per UTC day (every draft counts: each is a model call), and per author.
    daily_cap: int = Field(default=50, ge=0, le=10_000)
    per_author_daily_cap: int = Field(default=3, ge=0, le=1000)
    # Authors below these are not answered (checked with one GET /2/users, a User: Read).
    min_author_followers: int = Field(default=0, ge=0, le=1_000_000_000)
    min_author_account_age_days: int = Field(default=0, ge=0, le=36_500)
    quiet_hours: QuietHours | None = None
    # X's language codes of posts to answer (empty: any); posts X could not place ("und") pass.
    languages: list[str] = Field(default_factory=list)
    # Never answered: X user ids or usernames (with or without @).
    skip_authors: list[str] = Field(default_factory=list)
    # Besides "stop" and "unsubscribe", always honoured.
    opt_out_phrases: list[str] = Field(default_factory=list)
    expire_after_minutes: int = Field(default=240, ge=5, le=10_080)
    # Posts older than this are not answered (a first poll brings months of mentions).
    reply_window_hours: int = Field(default=24, ge=1, le=168)
    max_attempts: int = Field(default=3, ge=1, le=10)
    similarity_threshold: float = Field(default=0.6, ge=0, le=1)
    recent_window: int = Field(default=50, ge=0, le=500)

    @model_validator(mode="after")
    def _auto_needs_x(self) -> Conversation:
        if self.approval == "auto" and not self.x_ai_reply_approval_granted:
            raise ValueError(
                'approval "auto" needs "x_ai_reply_approval_granted": true: X requires its '
                "prior approval before AI-written replies are posted without a person "
                "approving each one"
            )
        return self


class Quotas(_Config):
    """X access tier and budgets. Caps come from the tier's preset unless overridden (SQL
    quota_caps()); the tier also decides what may be attempted (SQL x_capabilities)."""

    plan: AccessTier = "pay_per_use"
    monthly_post_cap: int | None = Field(default=None, ge=0)
    monthly_read_cap: int | None = Field(default=None, ge=0)
    alert_threshold: float = Field(default=0.8, ge=0.01, le=1)
    # Superseded by configs.pricing (prices per operation); accepted for old rows, not used.
    cost_per_post_usd: float = Field(default=0.01, ge=0, le=100)
    cost_per_read_usd: float = Field(default=0.005, ge=0, le=100)
    openai_monthly_budget_usd: float | None = Field(default=20, ge=0)
    # X and OpenAI together, per billing cycle: 80 % alert, hard stop at 100 % (jobs wait).
    monthly_budget_usd: float | None = Field(default=50, ge=0, le=1e7)


class XPrices(_Config):
    """X's pay-per-use price (USD) per operation: docs.x.com/x-api/getting-started/pricing."""

    post: float = Field(default=0.015, ge=0, le=100)  # Post: Create, per request
    post_with_url: float = Field(default=0.20, ge=0, le=100)  # Post: Create (with URL)
    reply_summoned: float = Field(default=0.010, ge=0, le=100)  # Post: Create (summoned)
    media_metadata: float = Field(default=0.005, ge=0, le=100)  # Media Metadata, per request
    post_read: float = Field(default=0.005, ge=0, le=100)  # Posts: Read, per post returned
    owned_read: float = Field(default=0.001, ge=0, le=100)  # Owned Reads, per resource
    user_read: float = Field(default=0.010, ge=0, le=100)  # User: Read, per user returned
    activity_event: float = Field(default=0.005, ge=0, le=100)  # X Activity API event


class TokenPrice(_Config):
    """USD per 1M tokens for an OpenAI text model."""

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)


class ImagePrice(_Config):
    """USD per 1M tokens for an OpenAI image model; ``per_image`` when no usage is reported."""

    text_input: float = Field(ge=0)
    image_input: float = Field(default=0.0, ge=0)
    output: float = Field(ge=0)
    per_image: float = Field(ge=0)


class OpenAIPrices(_Config):
    """Overrides of the worker's OpenAI price table (worker.clients.ai.pricing), per model."""

    text: dict[str, TokenPrice] = Field(default_factory=dict)
    image: dict[str, ImagePrice] = Field(default_factory=dict)
    moderation_per_call: float | None = Field(default=None, ge=0)


class PricingConfig(_Config):
    """Prices per operation: X's under `x`, OpenAI's under `openai` (per-model overrides of the
    worker's table), with their date and source. SQL `x_price()` reads the same row."""

    as_of: date = date(2026, 4, 20)
    source: str = "https://docs.x.com/x-api/getting-started/pricing"
    x: XPrices = Field(default_factory=XPrices)
    openai: OpenAIPrices = Field(default_factory=OpenAIPrices)


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
    "pricing": PricingConfig,
    "conversation": Conversation,
}


def validate_config(key: str, value: object) -> _Config:
    """Validate one config document; raises pydantic.ValidationError or KeyError (unknown key)."""
    model = CONFIG_MODELS[key]
    return model.model_validate(value)
