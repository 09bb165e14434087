"""What the OpenAI stand-in serves: models per endpoint family, retired models, image sizes and
pixel limits, moderation categories, message roles, endpoints and the fault kinds tests inject.

The model sets are the stand-in's catalog (tests may add to them); the limits are the ones the
real API enforces (see the package docstring for how they were checked).
"""

from __future__ import annotations

from typing import Literal, get_args

DEFAULT_API_KEY = "sk-sandbox-chirpbase"
DEFAULT_REFUSAL = "I'm sorry, but I can't help with that request."

# Models the stand-in serves. Sets are per endpoint family; tests may add to them.
CHAT_MODELS: frozenset[str] = frozenset(
    {
        "gpt-6-astra",
        "gpt-6.2-astra",
        "gpt-6-sol",
        "gpt-6.1-sol",
        "gpt-6.2-sol",
        "gpt-6.1-terra",
        "gpt-6-luna",
        "gpt-5.6-sol",
        "gpt-5.6-terra",
        "gpt-5.6-luna",
        "gpt-5.5",
        "gpt-5.5-2026-04-23",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5.4-mini-2026-03-17",
        "gpt-5.4-nano",
        "gpt-5.4-nano-2026-03-17",
        "gpt-5.2",
        "gpt-5.2-2025-12-11",
        "gpt-5.1",
        "gpt-5.1-2025-11-13",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    }
)
IMAGE_MODELS: frozenset[str] = frozenset(
    {
        "gpt-image-1-mini",
        "gpt-image-1.5",
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare",
        "chatgpt-image-latest",
    }
)
MODERATION_MODELS: frozenset[str] = frozenset(
    {"omni-moderation-latest", "omni-moderation-2024-09-26"}
)
# Shut down per the SDK's model notes as of late 2026: requests for them get a 404.
RETIRED_MODELS: frozenset[str] = frozenset(
    {
        "gpt-image-1",
        "dall-e-2",
        "dall-e-3",
        "gpt-4.1-nano",
        "o4-mini",
        "o3-mini",
        "o1-mini",
        "o1-preview",
        "gpt-4-turbo",
        "gpt-4",
        "gpt-3.5-turbo",
        "chatgpt-4o-latest",
        "text-moderation-latest",
        "text-moderation-stable",
    }
)
# Image models that take arbitrary WIDTHxHEIGHT (multiples of 16, aspect 1:3..3:1, pixel limits).
FLEXIBLE_SIZE_IMAGE_MODELS: frozenset[str] = frozenset(
    {"gpt-image-2", "gpt-image-2-2026-04-21", "gpt-image-2.5-sunburst", "gpt-image-2.5-flare"}
)
STANDARD_IMAGE_SIZES: tuple[str, ...] = ("1024x1024", "1024x1536", "1536x1024", "auto")
MIN_IMAGE_PIXELS = 655_360
MAX_IMAGE_PIXELS = 3840 * 2160
MAX_IMAGE_EDGE = 3840
MAX_PROMPT_CHARS = 32_000

MODERATION_CATEGORIES: tuple[str, ...] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_IMAGE_CAPABLE_CATEGORIES = frozenset(
    {
        "self-harm",
        "self-harm/intent",
        "self-harm/instructions",
        "sexual",
        "violence",
        "violence/graphic",
    }
)
MESSAGE_ROLES: tuple[str, ...] = ("system", "assistant", "user", "function", "tool", "developer")
Endpoint = Literal["chat", "images", "moderations", "models"]
ENDPOINTS: tuple[str, ...] = get_args(Endpoint)
FaultKind = Literal[
    "rate_limit", "quota", "server_error", "bad_gateway", "overloaded", "timeout", "disconnect"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
