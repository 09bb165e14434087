"""chirpbase's OpenAI client: structured tweet text, images, moderation, usage and cost.

API choice: **Chat Completions** with structured output (``client.chat.completions.parse`` and a
pydantic model as ``response_format``), not the Responses API. A tweet is one stateless
system+user turn: we need none of what Responses adds (server-side conversation state, built-in
tools, reasoning items), Chat Completions is what every OpenAI-compatible endpoint reachable
through ``OPENAI_BASE_URL`` speaks (Azure, proxies, local servers, our sandbox), and it stores
nothing on OpenAI's side by default (Responses defaults to ``store=true``). ``.parse()`` turns the
model into a strict JSON schema, sends it, and validates the reply back into the model.

Retries: tenacity is the single retry policy (the SDK's own ``max_retries`` is 0). It retries
429 rate limits, 5xx, 408/409, timeouts and connection errors with exponential backoff plus
jitter, honours ``retry-after-ms`` / ``retry-after`` (or the ``x-ratelimit-reset-*`` headers of an
exhausted window) up to ``RetryPolicy.max_retry_after``, and stops after ``max_attempts``. A
longer server-imposed wait is not slept through: the error carries ``retry_after`` so the job
queue can reschedule. Everything the handler may see is an :class:`AIError` subclass with a
``retryable`` flag; the API key never appears in messages (they are redacted) and the SDK's
exception is not chained (so tracebacks cannot leak it either).

Cost: every call returns a :class:`Usage` with token/image counts and ``cost_usd`` estimated from
:class:`Pricing` (USD per 1M tokens, per image as a fallback). The numbers are defaults from
OpenAI's public price list (checked Nov 2026); config can override any of them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import json
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, cast

import pydantic
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from worker.runtime.metrics import API_CALLS

if TYPE_CHECKING:
    import openai
    from openai import AsyncOpenAI

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"

_log = logger.bind(service="openai")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class AIError(Exception):
    """Base of every error this client raises. ``retryable`` tells the handler whether running
    the job again later can help; ``retry_after`` (seconds) is the server's requested wait."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.attempts = attempts
        self.usage = usage

    def __str__(self) -> str:
        return self.message


class AIRateLimited(AIError):
    """429 rate limit (requests or tokens per minute) still hit after the bounded retries, or
    with a ``retry_after`` longer than the client sleeps through."""

    retryable = True

    def __init__(self, message: str, *, rate_limit: RateLimitInfo | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.rate_limit = rate_limit


class AIQuotaExhausted(AIError):
    """429 ``insufficient_quota``: the account is out of credit or over its budget. Retrying
    does not help until someone acts (alert the operator)."""

    retryable = False


class AIUnavailable(AIError):
    """5xx, timeout or connection failure after the bounded retries."""

    retryable = True

    def __init__(self, message: str, *, timeout: bool = False, **kw: Any):
        super().__init__(message, **kw)
        self.timeout = timeout


class AIBadRequest(AIError):
    """The request itself is wrong (400/404/422...): bad parameters, unknown model. Not
    retryable without a change (usually of config)."""

    retryable = False


class AIAuthError(AIError):
    """401/403: missing, wrong or revoked API key, or no access to the project/model."""

    retryable = False


class AIRefusal(AIError):
    """The model refused (``message.refusal``) or the output was stopped by the content filter.
    Tokens were billed: ``usage`` says how many."""

    retryable = False

    def __init__(self, message: str, *, refusal: str, reason: str = "refusal", **kw: Any):
        super().__init__(message, **kw)
        self.refusal = refusal
        self.reason = reason


class AIInvalidOutput(AIError):
    """The reply did not parse into the requested schema (truncated at the token limit,
    invalid JSON, failed validation). Billed; a new sample may succeed."""

    retryable = True

    def __init__(self, message: str, *, raw_content: str | None = None, reason: str, **kw: Any):
        super().__init__(message, **kw)
        self.raw_content = raw_content
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Usage, rate limits, pricing
# --------------------------------------------------------------------------------------------


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset_duration(value: str | None) -> float | None:
    """OpenAI's ``x-ratelimit-reset-*`` format (``20ms``, ``1s``, ``6m0s``, ``1h2m3.5s``) in
    seconds, or None when absent or unparseable."""
    if not value:
        return None
    text = value.strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        number, unit = float(match.group(1)), match.group(2)
        total += {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit] * number
        pos = match.end()
    if pos != len(text) or pos == 0:
        try:
            return max(0.0, float(text))
        except ValueError:
            return None
    return total


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class RateLimitInfo:
    """The ``x-ratelimit-*`` headers of one response."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo | None:
        info = cls(
            limit_requests=_int_header(headers, "x-ratelimit-limit-requests"),
            remaining_requests=_int_header(headers, "x-ratelimit-remaining-requests"),
            reset_requests_s=parse_reset_duration(headers.get("x-ratelimit-reset-requests")),
            limit_tokens=_int_header(headers, "x-ratelimit-limit-tokens"),
            remaining_tokens=_int_header(headers, "x-ratelimit-remaining-tokens"),
            reset_tokens_s=parse_reset_duration(headers.get("x-ratelimit-reset-tokens")),
        )
        return None if info == cls() else info

    def exhausted_wait(self) -> float | None:
        """Seconds until an exhausted window resets (None when nothing is exhausted)."""
        waits = []
        if self.remaining_requests == 0 and self.reset_requests_s is not None:
            waits.append(self.reset_requests_s)
        if self.remaining_tokens == 0 and self.reset_tokens_s is not None:
            waits.append(self.reset_tokens_s)
        return max(waits) if waits else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """``retry-after-ms`` (preferred, as the SDK does), else ``retry-after`` in seconds or as an
    HTTP date; None when absent or unusable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Usage:
    """What one client call consumed (billed attempts only), for ``api_usage`` and cost."""

    operation: Literal["text", "image", "moderation"]
    model: str
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    image_input_tokens: int = 0
    images: int = 0
    cost_usd: float = 0.0
    attempts: int = 1
    request_id: str | None = None
    rate_limit: RateLimitInfo | None = field(default=None, compare=False)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        """Sum of two calls (e.g. a generation and its retry with feedback)."""
        return Usage(
            operation=self.operation,
            model=self.model if self.model == other.model else f"{self.model}+{other.model}",
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            image_input_tokens=self.image_input_tokens + other.image_input_tokens,
            images=self.images + other.images,
            cost_usd=self.cost_usd + other.cost_usd,
            attempts=self.attempts + other.attempts,
            request_id=other.request_id or self.request_id,
            rate_limit=other.rate_limit or self.rate_limit,
        )


class TokenPrice(BaseModel):
    """USD per 1M tokens for a text model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)


class ImagePrice(BaseModel):
    """USD per 1M tokens for a GPT image model; ``per_image`` when no usage is reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text_input: float = Field(ge=0)
    image_input: float = Field(default=0.0, ge=0)
    output: float = Field(ge=0)
    per_image: float = Field(ge=0)


# Defaults from OpenAI's public price list (standard tier, checked Nov 2026). Config overrides.
DEFAULT_TEXT_PRICES: dict[str, TokenPrice] = {
    "gpt-5.5": TokenPrice(input=5.00, cached_input=0.50, output=30.00),
    "gpt-5.4": TokenPrice(input=2.50, cached_input=0.25, output=15.00),
    "gpt-5.4-mini": TokenPrice(input=0.75, cached_input=0.075, output=4.50),
    "gpt-5.4-nano": TokenPrice(input=0.20, cached_input=0.02, output=1.25),
    "gpt-5": TokenPrice(input=1.25, cached_input=0.125, output=10.00),
    "gpt-5-mini": TokenPrice(input=0.25, cached_input=0.025, output=2.00),
    "gpt-5-nano": TokenPrice(input=0.05, cached_input=0.005, output=0.40),
    "gpt-4.1": TokenPrice(input=2.00, cached_input=0.50, output=8.00),
    "gpt-4.1-mini": TokenPrice(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4o": TokenPrice(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4o-mini": TokenPrice(input=0.15, cached_input=0.075, output=0.60),
}
DEFAULT_IMAGE_PRICES: dict[str, ImagePrice] = {
    "gpt-image-2": ImagePrice(text_input=5.00, image_input=8.00, output=30.00, per_image=0.053),
    "gpt-image-1.5": ImagePrice(text_input=5.00, image_input=8.00, output=32.00, per_image=0.034),
    "gpt-image-1-mini": ImagePrice(text_input=2.00, image_input=2.50, output=8.00, per_image=0.011),
    "gpt-image-1": ImagePrice(text_input=5.00, image_input=10.00, output=40.00, per_image=0.042),
}
# Unknown models are priced like a mid/high model so cost is never silently zero.
FALLBACK_TEXT_PRICE = TokenPrice(input=2.50, cached_input=0.25, output=15.00)
FALLBACK_IMAGE_PRICE = ImagePrice(text_input=5.00, image_input=8.00, output=30.00, per_image=0.053)

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class Pricing(BaseModel):
    """Price table; ``Pricing().merged({...})`` applies a config override over the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: dict[str, TokenPrice] = Field(default_factory=lambda: dict(DEFAULT_TEXT_PRICES))
    image: dict[str, ImagePrice] = Field(default_factory=lambda: dict(DEFAULT_IMAGE_PRICES))
    fallback_text: TokenPrice = FALLBACK_TEXT_PRICE
    fallback_image: ImagePrice = FALLBACK_IMAGE_PRICE
    moderation_per_call: float = Field(default=0.0, ge=0)

    def merged(self, overrides: Mapping[str, Any] | None) -> Pricing:
        """A copy with ``overrides`` (same shape, partial tables allowed) applied on top."""
        if not overrides:
            return self
        data = self.model_dump()
        for key, value in overrides.items():
            if key in ("text", "image") and isinstance(value, Mapping):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return Pricing.model_validate(data)

    @staticmethod
    def _lookup(table: Mapping[str, R], model: str) -> R | None:
        if model in table:
            return table[model]
        base = _DATE_SUFFIX.sub("", model)
        if base in table:
            return table[base]
        prefixes = [k for k in table if base.startswith(k + "-")]
        return table[max(prefixes, key=len)] if prefixes else None

    def text_price(self, model: str) -> TokenPrice:
        return self._lookup(self.text, model) or self.fallback_text

    def image_price(self, model: str) -> ImagePrice:
        return self._lookup(self.image, model) or self.fallback_image

    def text_cost(
        self, model: str, input_tokens: int, cached_input_tokens: int, output_tokens: int
    ) -> float:
        """``input_tokens`` includes the cached ones, as OpenAI reports ``prompt_tokens``."""
        price = self.text_price(model)
        cached = min(cached_input_tokens, input_tokens)
        cached_rate = price.cached_input if price.cached_input is not None else price.input
        return (
            (input_tokens - cached) * price.input
            + cached * cached_rate
            + output_tokens * price.output
        ) / 1_000_000

    def image_cost(
        self,
        model: str,
        *,
        text_input_tokens: int = 0,
        image_input_tokens: int = 0,
        output_tokens: int = 0,
        images: int = 1,
        has_usage: bool = True,
    ) -> float:
        price = self.image_price(model)
        if not has_usage:
            return price.per_image * images
        return (
            text_input_tokens * price.text_input
            + image_input_tokens * price.image_input
            + output_tokens * price.output
        ) / 1_000_000

    def estimate(self, usage: Usage) -> float:
        """Recompute the cost of a :class:`Usage` with this table."""
        if usage.operation == "text":
            return self.text_cost(
                usage.model, usage.input_tokens, usage.cached_input_tokens, usage.output_tokens
            )
        if usage.operation == "image":
            has_usage = usage.input_tokens + usage.output_tokens > 0
            return self.image_cost(
                usage.model,
                text_input_tokens=usage.input_tokens - usage.image_input_tokens,
                image_input_tokens=usage.image_input_tokens,
                output_tokens=usage.output_tokens,
                images=usage.images,
                has_usage=has_usage,
            )
        return self.moderation_per_call


@dataclass(frozen=True)
class ModerationResult:
    flagged: bool
    categories: tuple[str, ...]
    """Names of the flagged categories, OpenAI's spelling (``harassment/threatening``)."""
    scores: Mapping[str, float] = field(default_factory=dict)
    model: str = DEFAULT_MODERATION_MODEL
    usage: Usage | None = None


# --------------------------------------------------------------------------------------------
# Retry policy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter (seconds). Tests shrink these."""

    max_attempts: int = 4
    initial_backoff: float = 0.5
    max_backoff: float = 20.0
    jitter: float = 0.5
    # Honour a server ``retry-after`` up to this long; beyond it, give up and let the queue
    # reschedule the job (the error's ``retry_after`` says when).
    max_retry_after: float = 60.0
    request_timeout: float = 60.0
    image_timeout: float = 180.0
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")


Sleep = Callable[[float], Awaitable[None]]

_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{4,}")


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class AIClient:
    """Async OpenAI access for the handlers. One per process; safe to share between tasks."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        pricing: Pricing | None = None,
        moderation_model: str = DEFAULT_MODERATION_MODEL,
        sleep: Sleep | None = None,
        client: AsyncOpenAI | None = None,
    ) -> None:
        import openai  # on first use, not at start-up: the package takes ~0.5 s to import
        from openai import AsyncOpenAI

        if not api_key:
            raise ValueError("OPENAI_API_KEY is empty")
        self.retry = retry or RetryPolicy()
        self.pricing = pricing or Pricing()
        self.moderation_model = moderation_model
        self._api_key = api_key
        self._sleep: Sleep = sleep or asyncio.sleep
        # initial * 2^(attempt-1) + uniform(0, jitter), capped at max_backoff.
        self._backoff = wait_exponential_jitter(
            multiplier=self.retry.initial_backoff,
            max=self.retry.max_backoff,
            jitter=self.retry.jitter,
        )
        timeout = openai.Timeout(self.retry.request_timeout, connect=self.retry.connect_timeout)
        if client is not None:
            self._client = client.with_options(max_retries=0, timeout=timeout)
        elif base_url:
            self._client = AsyncOpenAI(
                api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
            )
        else:
            self._client = AsyncOpenAI(api_key=api_key, max_retries=0, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> AIClient:
        """Build from :class:`worker.settings.Settings` (``OPENAI_API_KEY``,
        ``OPENAI_BASE_URL``); ``kwargs`` go to the constructor (retry, pricing, ...)."""
        key = settings.openai_api_key
        api_key = key.get_secret_value() if hasattr(key, "get_secret_value") else str(key)
        return cls(api_key=api_key, base_url=getattr(settings, "openai_base_url", None), **kwargs)

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def aclose(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- text ----------------------------------------------------------------------------------
    async def generate_tweet_text(
        self,
        system: str,
        user: str,
        model: str,
        schema: type[T],
        *,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> tuple[T, Usage]:
        """One structured completion parsed into ``schema``.

        Raises :class:`AIRefusal` (refusal or content filter), :class:`AIInvalidOutput` (reply
        not valid for ``schema``), or the transport errors (:class:`AIRateLimited`,
        :class:`AIUnavailable`, :class:`AIBadRequest`, :class:`AIAuthError`,
        :class:`AIQuotaExhausted`). Both refusal and invalid output carry the billed ``usage``.
        """
        import openai

        extra: dict[str, Any] = {}
        if max_output_tokens is not None:
            extra["max_completion_tokens"] = max_output_tokens
        if temperature is not None:
            extra["temperature"] = temperature
        messages: list[Any] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]

        async def call() -> Any:
            return await self._client.chat.completions.with_raw_response.parse(
                model=model, messages=messages, response_format=schema, **extra
            )

        raw, attempts = await self._with_retries("chat.completions", call)
        rate_limit = RateLimitInfo.from_headers(raw.headers)
        try:
            completion = raw.parse()
        except openai.LengthFinishReasonError as exc:
            cut_usage = self._text_usage(exc.completion, model, attempts, raw, rate_limit)
            raise AIInvalidOutput(
                f"OpenAI output for {schema.__name__} was cut off at the token limit",
                reason="length",
                raw_content=_first_content(exc.completion),
                usage=cut_usage,
                attempts=attempts,
                request_id=raw.request_id,
            ) from None
        except openai.ContentFilterFinishReasonError as exc:
            filtered_usage = (
                self._text_usage(exc.completion, model, attempts, raw, rate_limit)
                if exc.completion is not None
                else None
            )
            raise AIRefusal(
                "OpenAI stopped the output with its content filter",
                refusal="content_filter",
                reason="content_filter",
                usage=filtered_usage,
                attempts=attempts,
                request_id=raw.request_id,
            ) from None
        except openai.APIError as exc:
            raise AIUnavailable(
                f"OpenAI chat.completions returned an unreadable body: {_short(str(exc))}",
                attempts=attempts,
                request_id=raw.request_id,
            ) from None
        except (pydantic.ValidationError, ValueError) as exc:
            body = _json_or_none(raw.http_response.content)
            invalid_usage = self._usage_from_body(body, model, attempts, raw, rate_limit)
            raise AIInvalidOutput(
                f"OpenAI output did not validate as {schema.__name__}: "
                f"{_short(self._redact(str(exc)))}",
                reason="validation",
                raw_content=_content_from_body(body),
                usage=invalid_usage,
                attempts=attempts,
                request_id=raw.request_id,
            ) from None

        usage = self._text_usage(completion, model, attempts, raw, rate_limit)
        if not completion.choices:
            raise AIInvalidOutput(
                "OpenAI returned no choices", reason="empty", usage=usage, attempts=attempts
            )
        message = completion.choices[0].message
        if message.refusal:
            raise AIRefusal(
                f"OpenAI model refused: {_short(message.refusal)}",
                refusal=message.refusal,
                usage=usage,
                attempts=attempts,
                request_id=raw.request_id,
            )
        parsed = message.parsed
        if parsed is None:
            raise AIInvalidOutput(
                f"OpenAI returned no content for {schema.__name__}",
                reason="empty",
                raw_content=message.content,
                usage=usage,
                attempts=attempts,
                request_id=raw.request_id,
            )
        return cast(T, parsed), usage

    def _text_usage(
        self,
        completion: Any,
        model: str,
        attempts: int,
        raw: Any,
        rate_limit: RateLimitInfo | None,
    ) -> Usage:
        usage = getattr(completion, "usage", None)
        used_model = getattr(completion, "model", None) or model
        input_tokens = getattr(usage, "prompt_tokens", 0) or 0
        output_tokens = getattr(usage, "completion_tokens", 0) or 0
        prompt_details = getattr(usage, "prompt_tokens_details", None)
        completion_details = getattr(usage, "completion_tokens_details", None)
        cached = getattr(prompt_details, "cached_tokens", 0) or 0
        reasoning = getattr(completion_details, "reasoning_tokens", 0) or 0
        return Usage(
            operation="text",
            model=used_model,
            input_tokens=input_tokens,
            cached_input_tokens=cached,
            output_tokens=output_tokens,
            reasoning_tokens=reasoning,
            cost_usd=self.pricing.text_cost(used_model, input_tokens, cached, output_tokens),
            attempts=attempts,
            request_id=getattr(raw, "request_id", None),
            rate_limit=rate_limit,
        )

    def _usage_from_body(
        self,
        body: Any,
        model: str,
        attempts: int,
        raw: Any,
        rate_limit: RateLimitInfo | None,
    ) -> Usage | None:
        from openai.types.chat import ChatCompletion

        if not isinstance(body, dict):
            return None
        try:
            completion = ChatCompletion.model_validate(body)
        except pydantic.ValidationError:
            return None
        return self._text_usage(completion, model, attempts, raw, rate_limit)

    # -- images --------------------------------------------------------------------------------
    async def generate_image(
        self, prompt: str, model: str, size: str = "1024x1024", *, quality: str | None = None
    ) -> tuple[bytes, Usage]:
        """One PNG for ``prompt`` (bytes, decoded from ``b64_json``) and its usage."""
        import openai

        extra: dict[str, Any] = {}
        if quality is not None:
            extra["quality"] = quality

        async def call() -> Any:
            return await self._client.images.with_raw_response.generate(
                prompt=prompt,
                model=model,
                size=size,
                n=1,
                output_format="png",
                timeout=openai.Timeout(
                    self.retry.image_timeout, connect=self.retry.connect_timeout
                ),
                **extra,
            )

        raw, attempts = await self._with_retries("images.generate", call)
        rate_limit = RateLimitInfo.from_headers(raw.headers)
        response = _parse_raw(raw, "images.generate", attempts)
        data = response.data or []
        usage_obj = response.usage
        text_in = image_in = out = 0
        if usage_obj is not None:
            details = usage_obj.input_tokens_details
            image_in = int(getattr(details, "image_tokens", 0) or 0)
            text_details = getattr(details, "text_tokens", None)
            text_in = (
                int(text_details)
                if text_details is not None
                else max(0, usage_obj.input_tokens - image_in)
            )
            out = usage_obj.output_tokens
        images = len(data)
        usage = Usage(
            operation="image",
            model=model,
            input_tokens=text_in + image_in,
            image_input_tokens=image_in,
            output_tokens=out,
            images=images,
            cost_usd=self.pricing.image_cost(
                model,
                text_input_tokens=text_in,
                image_input_tokens=image_in,
                output_tokens=out,
                images=images,
                has_usage=usage_obj is not None,
            ),
            attempts=attempts,
            request_id=raw.request_id,
            rate_limit=rate_limit,
        )
        if not data or not data[0].b64_json:
            raise AIInvalidOutput(
                "OpenAI images returned no b64_json image",
                reason="empty",
                usage=usage,
                attempts=attempts,
                request_id=raw.request_id,
            )
        try:
            png = base64.b64decode(data[0].b64_json, validate=True)
        except (binascii.Error, ValueError):
            raise AIInvalidOutput(
                "OpenAI images returned invalid base64",
                reason="decode",
                usage=usage,
                attempts=attempts,
                request_id=raw.request_id,
            ) from None
        if not png.startswith(PNG_SIGNATURE):
            raise AIInvalidOutput(
                "OpenAI images returned something that is not a PNG",
                reason="format",
                usage=usage,
                attempts=attempts,
                request_id=raw.request_id,
            )
        return png, usage

    # -- moderation ----------------------------------------------------------------------------
    async def moderate(self, text: str, *, model: str | None = None) -> ModerationResult:
        """Classify ``text``; ``flagged`` with the flagged category names."""
        use_model = model or self.moderation_model

        async def call() -> Any:
            return await self._client.moderations.with_raw_response.create(
                input=text, model=use_model
            )

        raw, attempts = await self._with_retries("moderations", call)
        response = _parse_raw(raw, "moderations", attempts)
        if not response.results:
            raise AIUnavailable("OpenAI moderation returned no result", attempts=attempts)
        result = response.results[0]
        flags = result.categories.model_dump(by_alias=True)
        scores = result.category_scores.model_dump(by_alias=True)
        categories = tuple(sorted(name for name, hit in flags.items() if hit is True))
        usage = Usage(
            operation="moderation",
            model=response.model or use_model,
            cost_usd=self.pricing.moderation_per_call,
            attempts=attempts,
            request_id=raw.request_id,
            rate_limit=RateLimitInfo.from_headers(raw.headers),
        )
        return ModerationResult(
            flagged=bool(result.flagged) or bool(categories),
            categories=categories,
            scores={k: float(v) for k, v in scores.items() if isinstance(v, int | float)},
            model=response.model or use_model,
            usage=usage,
        )

    # -- retries and error translation ---------------------------------------------------------
    async def _with_retries(
        self, operation: str, call: Callable[[], Awaitable[R]]
    ) -> tuple[R, int]:
        import openai

        attempts = 0

        async def attempt() -> R:
            nonlocal attempts
            attempts += 1
            try:
                result = await call()
            except openai.APIError as exc:
                error = self._translate(exc, operation)
                error.attempts = attempts
                _count(operation, error.status_code or type(error).__name__)
                raise error from None
            _count(operation, 200)
            return result

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(self._should_retry),
            before_sleep=self._before_sleep(operation),
            sleep=self._sleep,
            reraise=True,
        )
        result: R = await retrying(attempt)
        return result, attempts

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, AIError) or not exc.retryable:
            return False
        return exc.retry_after is None or exc.retry_after <= self.retry.max_retry_after

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, AIError) and exc.retry_after is not None:
            # The server said when; add a little jitter so replicas do not return in lockstep.
            return exc.retry_after + random.uniform(0, min(self.retry.jitter, exc.retry_after / 10))
        return float(self._backoff(state))

    def _before_sleep(self, operation: str) -> Callable[[RetryCallState], None]:
        def log(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            _log.warning(
                "openai {op} attempt {n}/{max} failed ({kind} {status}); retrying in {wait:.2f}s",
                op=operation,
                n=state.attempt_number,
                max=self.retry.max_attempts,
                kind=type(exc).__name__,
                status=getattr(exc, "status_code", None),
                wait=wait,
            )

        return log

    def _redact(self, text: str) -> str:
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, "[REDACTED]")
        return _KEYLIKE.sub("sk-[REDACTED]", text)

    def _translate(self, exc: openai.APIError, operation: str) -> AIError:
        import openai

        detail = self._redact(_short(getattr(exc, "message", "") or type(exc).__name__))
        if isinstance(exc, openai.APITimeoutError):
            return AIUnavailable(f"OpenAI {operation} timed out", timeout=True)
        if isinstance(exc, openai.APIConnectionError):
            return AIUnavailable(f"OpenAI {operation}: connection failed ({detail})")
        if not isinstance(exc, openai.APIStatusError):
            return AIUnavailable(f"OpenAI {operation}: unusable response ({detail})")
        status = exc.status_code
        headers = exc.response.headers
        common: dict[str, Any] = {
            "status_code": status,
            "code": exc.code,
            "param": exc.param,
            "request_id": exc.request_id,
        }
        message = f"OpenAI {operation} failed with HTTP {status}"
        if exc.code:
            message += f" ({exc.code})"
        body_message = _error_message(exc.body)
        if body_message:
            message += f": {self._redact(_short(body_message))}"
        if status == 429:
            if exc.code == "insufficient_quota" or exc.type == "insufficient_quota":
                return AIQuotaExhausted(message, **common)
            rate_limit = RateLimitInfo.from_headers(headers)
            retry_after = parse_retry_after(headers)
            if retry_after is None and rate_limit is not None:
                retry_after = rate_limit.exhausted_wait()
            return AIRateLimited(message, rate_limit=rate_limit, retry_after=retry_after, **common)
        if status in (401, 403):
            return AIAuthError(message, **common)
        if status in (408, 409) or status >= 500:
            return AIUnavailable(message, retry_after=parse_retry_after(headers), **common)
        return AIBadRequest(message, **common)


def _parse_raw(raw: Any, operation: str, attempts: int) -> Any:
    """The typed body of a raw response; a body that does not parse is a server fault."""
    import openai

    try:
        return raw.parse()
    except (openai.APIError, pydantic.ValidationError, ValueError) as exc:
        raise AIUnavailable(
            f"OpenAI {operation} returned an unreadable body: {_short(str(exc))}",
            attempts=attempts,
            request_id=getattr(raw, "request_id", None),
        ) from None


def _count(operation: str, status: int | str) -> None:
    API_CALLS.labels("openai", operation, str(status)).inc()


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_message(body: object) -> str | None:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    if isinstance(body, str) and body.strip():
        if "<html" in body.lower():
            title = re.search(r"<title>(.*?)</title>", body, re.IGNORECASE | re.DOTALL)
            return title.group(1).strip() if title else "HTML error page"
        return body
    return None


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _content_from_body(body: Any) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _first_content(completion: Any) -> str | None:
    try:
        content = completion.choices[0].message.content
    except (AttributeError, IndexError):
        return None
    return content if isinstance(content, str) else None


__all__ = [
    "DEFAULT_IMAGE_PRICES",
    "DEFAULT_TEXT_PRICES",
    "AIAuthError",
    "AIBadRequest",
    "AIClient",
    "AIError",
    "AIInvalidOutput",
    "AIQuotaExhausted",
    "AIRateLimited",
    "AIRefusal",
    "AIUnavailable",
    "ImagePrice",
    "ModerationResult",
    "Pricing",
    "RateLimitInfo",
    "RetryPolicy",
    "TokenPrice",
    "Usage",
    "parse_reset_duration",
    "parse_retry_after",
]
