"""OpenAI-compatible stand-in (SANDBOX) for the endpoints chirpbase uses.

Endpoints, shaped as the real API shapes them (checked against the `openai` Python SDK's types):

- ``POST /v1/chat/completions``: plain text, ``json_object`` and ``json_schema`` (structured
  output, so ``client.chat.completions.parse()`` works), refusals, ``usage`` token counts.
- ``POST /v1/images/generations``: GPT image models; ``data[].b64_json`` holds a real image
  (PNG by default) of the requested size, deterministic from the prompt; ``usage`` as gpt-image
  models report it.
- ``POST /v1/moderations``: the ``omni-moderation-latest`` result shape.
- ``GET /v1/models`` and ``GET /v1/models/{model}``.

Validation like the real API: ``Authorization: Bearer <key>`` (401 with OpenAI's error JSON
otherwise), unknown or retired model -> 404 ``model_not_found``, missing/invalid fields -> 400
``invalid_request_error`` with ``param`` and ``code``, invalid image size -> 400.

Everything scripted lives in :class:`OpenAIState`, driven in-process by tests and mirrored by the
unauthenticated ``/_sandbox/...`` control endpoints:

- chat: a queue of next outputs (text, a JSON object, raw content or a refusal), or a responder
  function of the request; ``refuse_next(n)``;
- moderation: flagged terms (case-insensitive, whole words) with their category;
- latency per endpoint (``chat``, ``images``, ``moderations``, ``models``);
- faults for the next N requests: 429 rate limit (``retry-after``, ``retry-after-ms`` and
  ``x-ratelimit-*`` headers), 429 ``insufficient_quota``, 500, 502 (HTML body, as a proxy sends),
  503, a slow response (to trip client timeouts) and a dropped connection;
- a per-minute request limit that really returns 429 when exceeded;
- every request recorded (body included, key never stored) so tests can inspect prompts.

Run alone: ``python -m sandbox.openai_api --port 8790`` (base URL ``http://127.0.0.1:8790/v1``).

The package, one module per concern: `catalog` (models, sizes, limits), `state` (`OpenAIState`
and the scripting types), `errors` (OpenAI's error JSON), `params` (request checks in the API's
wording), `schemas` (structured-output JSON schema), `images` (the rendered images), `handlers`
(the request cycle every endpoint shares), `chat`, `media` (images and moderations), `control`
(models and `/_sandbox/...`), `app` (`create_app`, `serve`, `main`).
"""

from __future__ import annotations

from sandbox.openai_api.app import RunningServer, create_app, main, serve
from sandbox.openai_api.catalog import (
    CHAT_MODELS,
    DEFAULT_API_KEY,
    DEFAULT_REFUSAL,
    ENDPOINTS,
    FAULT_KINDS,
    FLEXIBLE_SIZE_IMAGE_MODELS,
    IMAGE_MODELS,
    MAX_IMAGE_EDGE,
    MAX_IMAGE_PIXELS,
    MAX_PROMPT_CHARS,
    MESSAGE_ROLES,
    MIN_IMAGE_PIXELS,
    MODERATION_CATEGORIES,
    MODERATION_MODELS,
    RETIRED_MODELS,
    STANDARD_IMAGE_SIZES,
    Endpoint,
    FaultKind,
)
from sandbox.openai_api.errors import ApiError, error_response, format_reset
from sandbox.openai_api.handlers import STATE_KEY
from sandbox.openai_api.images import parse_size, render_image
from sandbox.openai_api.params import estimate_tokens
from sandbox.openai_api.schemas import (
    default_chat_text,
    strict_schema_problem,
    synthesize_instance,
    validate_instance,
)
from sandbox.openai_api.state import (
    ChatRequest,
    ChatResponder,
    ChatScript,
    Fault,
    OpenAIState,
    RawContent,
    RecordedRequest,
    Refusal,
)

__all__ = [
    "CHAT_MODELS",
    "DEFAULT_API_KEY",
    "DEFAULT_REFUSAL",
    "ENDPOINTS",
    "FAULT_KINDS",
    "FLEXIBLE_SIZE_IMAGE_MODELS",
    "IMAGE_MODELS",
    "MAX_IMAGE_EDGE",
    "MAX_IMAGE_PIXELS",
    "MAX_PROMPT_CHARS",
    "MESSAGE_ROLES",
    "MIN_IMAGE_PIXELS",
    "MODERATION_CATEGORIES",
    "MODERATION_MODELS",
    "RETIRED_MODELS",
    "STANDARD_IMAGE_SIZES",
    "STATE_KEY",
    "ApiError",
    "ChatRequest",
    "ChatResponder",
    "ChatScript",
    "Endpoint",
    "Fault",
    "FaultKind",
    "OpenAIState",
    "RawContent",
    "RecordedRequest",
    "Refusal",
    "RunningServer",
    "create_app",
    "default_chat_text",
    "error_response",
    "estimate_tokens",
    "format_reset",
    "main",
    "parse_size",
    "render_image",
    "serve",
    "strict_schema_problem",
    "synthesize_instance",
    "validate_instance",
]
