"""What an OpenAI call cost: token and image counts, and prices per model (USD).

Defaults come from OpenAI's public price list (checked Nov 2026); config can override any of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    pass

from worker.clients.ai.limits import RateLimitInfo
from worker.config.models import ImagePrice, TokenPrice  # the shapes of configs.pricing.openai

R = TypeVar("R")


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
