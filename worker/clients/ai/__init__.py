"""chirpbase's OpenAI client: structured tweet text, images, moderation, usage and cost.

The calls are in ``client``, the errors in ``errors``, retries and rate limits in ``limits``,
prices and usage in ``pricing``.

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

from worker.clients.ai.client import AIClient, ModerationResult
from worker.clients.ai.errors import (
    AIAuthError,
    AIBadRequest,
    AIError,
    AIInvalidOutput,
    AIQuotaExhausted,
    AIRateLimited,
    AIRefusal,
    AIUnavailable,
)
from worker.clients.ai.limits import (
    RateLimitInfo,
    RetryPolicy,
    parse_reset_duration,
    parse_retry_after,
)
from worker.clients.ai.pricing import ImagePrice, Pricing, TokenPrice, Usage

__all__ = [
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
