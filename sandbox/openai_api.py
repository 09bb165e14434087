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
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import io
import json
import math
import random
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

from sandbox.ports import run_app

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


# --------------------------------------------------------------------------------------------
# Scripting types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A scripted refusal: ``message.content`` is null and ``message.refusal`` holds this text."""

    message: str = DEFAULT_REFUSAL


@dataclass(frozen=True)
class RawContent:
    """Scripted ``message.content`` sent verbatim (e.g. invalid JSON, or JSON off-schema)."""

    content: str


# What a chat script item (queued, or returned by a responder) may be:
# - str: the text; with a json_schema response format it goes into the schema's main string
#   field (``text``/``tweet``/``content``/... or the first string property) and the rest of
#   the object is synthesized so it satisfies the schema;
# - dict/list: serialized as the JSON content as is;
# - Refusal / RawContent: see above.
ChatScript = str | dict[str, Any] | list[Any] | Refusal | RawContent


@dataclass(frozen=True)
class ChatRequest:
    """What a chat responder sees about the request it answers."""

    model: str
    messages: list[dict[str, Any]]
    system: str
    user: str
    schema: dict[str, Any] | None
    schema_name: str | None
    body: dict[str, Any]


ChatResponder = Callable[[ChatRequest], "ChatScript | None"]


@dataclass
class Fault:
    kind: FaultKind
    retry_after: float | None = None


@dataclass
class RecordedRequest:
    """One request to a model endpoint, recorded when it arrives (in arrival order).

    ``status`` is the HTTP status answered, or 0 while unanswered and for requests that never
    got an answer (a dropped connection, a client that gave up during a stall); ``answered``
    turns true once the stand-in is done with it."""

    seq: int
    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    authorized: bool
    fault: str | None
    at: float
    answered: bool = False

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return [m for m in self.body["messages"] if isinstance(m, dict)]
        return []

    @property
    def prompt_text(self) -> str:
        """All text of the request (chat messages, image prompt or moderation input)."""
        if self.endpoint == "chat":
            return "\n".join(_content_text(m.get("content")) for m in self.messages)
        if isinstance(self.body, dict):
            if isinstance(self.body.get("prompt"), str):
                return str(self.body["prompt"])
            if "input" in self.body:
                return "\n".join(_moderation_texts(self.body["input"]))
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "endpoint": self.endpoint,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "status": self.status,
            "authorized": self.authorized,
            "fault": self.fault,
            "at": self.at,
            "answered": self.answered,
        }


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------


class OpenAIState:
    """Everything the stand-in does that tests control. Use one per app; methods are not
    thread-safe (drive it from the event loop the app runs on, or through /_sandbox)."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        chat_models: Iterable[str] = CHAT_MODELS,
        image_models: Iterable[str] = IMAGE_MODELS,
        moderation_models: Iterable[str] = MODERATION_MODELS,
        retired_models: Iterable[str] = RETIRED_MODELS,
        default_image_model: str = "gpt-image-1.5",
        requests_per_minute: int = 10_000,
        tokens_per_minute: int = 30_000_000,
        hang_seconds: float = 30.0,
    ) -> None:
        self.api_keys: set[str] = set(api_keys)
        self.chat_models: set[str] = set(chat_models)
        self.image_models: set[str] = set(image_models)
        self.moderation_models: set[str] = set(moderation_models)
        self.retired_models: set[str] = set(retired_models)
        self.default_image_model = default_image_model
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        # How long a "timeout" fault stalls before answering normally.
        self.hang_seconds = hang_seconds
        self.chat_queue: deque[ChatScript] = deque()
        self.chat_responder: ChatResponder | None = None
        self.refusals_pending = 0
        self.refusal_message = DEFAULT_REFUSAL
        self.flagged_terms: dict[str, str] = {}
        self.latency: dict[str, float] = dict.fromkeys(ENDPOINTS, 0.0)
        self.faults: dict[str | None, deque[Fault]] = {}
        self.requests: list[RecordedRequest] = []
        self._seq = 0
        self._window_start = 0.0
        self._window_requests = 0
        self._window_tokens = 0
        self._cond: asyncio.Condition | None = None

    # -- chat scripting ------------------------------------------------------------------------
    def queue_chat(self, *items: ChatScript) -> None:
        """Queue the next chat outputs (consumed one per chat completion, in order)."""
        for item in items:
            if not isinstance(item, str | dict | list | Refusal | RawContent):
                raise TypeError(f"unsupported chat script item: {item!r}")
            self.chat_queue.append(item)

    def set_chat_responder(self, responder: ChatResponder | None) -> None:
        """Answer chat completions with ``responder(request)`` when the queue is empty
        (returning None falls back to the default deterministic text)."""
        self.chat_responder = responder

    def refuse_next(self, count: int = 1, message: str = DEFAULT_REFUSAL) -> None:
        """The next ``count`` chat completions refuse (without consuming the queue)."""
        self.refusals_pending += count
        self.refusal_message = message

    # -- moderation ----------------------------------------------------------------------------
    def flag_terms(
        self, terms: Iterable[str] | Mapping[str, str], category: str = "harassment"
    ) -> None:
        """Moderation flags inputs containing any of ``terms`` (whole word, any case).
        A mapping gives each term its own category."""
        pairs = terms.items() if isinstance(terms, Mapping) else ((t, category) for t in terms)
        for term, cat in pairs:
            if cat not in MODERATION_CATEGORIES:
                raise ValueError(f"unknown moderation category {cat!r}")
            if not term.strip():
                raise ValueError("empty flagged term")
            self.flagged_terms[term.strip().lower()] = cat

    # -- latency and faults --------------------------------------------------------------------
    def set_latency(self, **seconds: float) -> None:
        """E.g. ``set_latency(chat=1.0, images=3.0)``: added before each successful answer."""
        for endpoint, value in seconds.items():
            if endpoint not in ENDPOINTS:
                raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS}")
            self.latency[endpoint] = max(0.0, float(value))

    def inject_fault(
        self,
        kind: FaultKind,
        count: int = 1,
        *,
        endpoint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next ``count`` authorized requests (to ``endpoint``, or to any model endpoint
        when None) fail with ``kind``. ``retry_after`` (seconds) sets the 429 headers."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS}")
        queue = self.faults.setdefault(endpoint, deque())
        queue.extend(Fault(kind, retry_after) for _ in range(count))

    def pending_faults(self) -> int:
        return sum(len(q) for q in self.faults.values())

    def _take_fault(self, endpoint: str) -> Fault | None:
        for key in (endpoint, None):
            queue = self.faults.get(key)
            if queue:
                return queue.popleft()
        return None

    # -- requests ------------------------------------------------------------------------------
    def requests_for(self, endpoint: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if endpoint is None or r.endpoint == endpoint]

    def clear_requests(self) -> None:
        self.requests.clear()

    async def wait_for_requests(
        self, count: int, *, endpoint: str | None = None, within: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait (at most ``within`` seconds) until ``count`` requests (to ``endpoint``) were
        answered; raises TimeoutError otherwise. Returns all requests (to ``endpoint``)."""

        def done() -> bool:
            return sum(1 for r in self.requests_for(endpoint) if r.answered) >= count

        cond = self._condition()
        async with asyncio.timeout(within), cond:
            await cond.wait_for(done)
        return self.requests_for(endpoint)

    def reset(self) -> None:
        """Forget scripts, faults, latency, flagged terms and recorded requests."""
        self.chat_queue.clear()
        self.chat_responder = None
        self.refusals_pending = 0
        self.refusal_message = DEFAULT_REFUSAL
        self.flagged_terms.clear()
        self.latency = dict.fromkeys(ENDPOINTS, 0.0)
        self.faults.clear()
        self.requests.clear()
        self._window_start = 0.0
        self._window_requests = 0
        self._window_tokens = 0

    def summary(self) -> dict[str, Any]:
        return {
            "chat_queue": len(self.chat_queue),
            "chat_responder": self.chat_responder is not None,
            "refusals_pending": self.refusals_pending,
            "flagged_terms": dict(self.flagged_terms),
            "latency": dict(self.latency),
            "faults": {(k or "*"): [f.kind for f in q] for k, q in self.faults.items() if q},
            "requests": len(self.requests),
            "requests_per_minute": self.requests_per_minute,
            "tokens_per_minute": self.tokens_per_minute,
            "hang_seconds": self.hang_seconds,
        }

    # -- internals -----------------------------------------------------------------------------
    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def _answered(self, rec: RecordedRequest, status: int) -> None:
        rec.status = status
        rec.answered = True
        cond = self._condition()
        async with cond:
            cond.notify_all()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _known_model(self, model: str) -> bool:
        return model in self.chat_models | self.image_models | self.moderation_models

    def _rate_window(self, tokens: int, *, count: bool) -> tuple[dict[str, str], bool]:
        """Account a request in the current one-minute window; return the x-ratelimit headers
        and whether the request limit is exceeded."""
        now = time.monotonic()
        if now - self._window_start >= 60.0:
            self._window_start = now
            self._window_requests = 0
            self._window_tokens = 0
        exceeded = self._window_requests >= self.requests_per_minute
        if count and not exceeded:
            self._window_requests += 1
            self._window_tokens += tokens
        reset = max(0.0, 60.0 - (now - self._window_start))
        rpm, tpm = self.requests_per_minute, self.tokens_per_minute
        headers = {
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-limit-tokens": str(tpm),
            "x-ratelimit-remaining-requests": str(max(0, rpm - self._window_requests)),
            "x-ratelimit-remaining-tokens": str(max(0, tpm - self._window_tokens)),
            "x-ratelimit-reset-requests": format_reset(reset if exceeded else 60.0 / rpm),
            "x-ratelimit-reset-tokens": format_reset(60.0 * self._window_tokens / tpm),
        }
        return headers, exceeded


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """Raised inside handlers; becomes OpenAI's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(
            self.status,
            self.message,
            type_=self.type,
            param=self.param,
            code=self.code,
            headers=self.headers,
        )


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=dict(headers or {}))


def format_reset(seconds: float) -> str:
    """OpenAI's reset duration format: ``20ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1.0:
        return f"{max(0, round(seconds * 1000))}ms"
    total = round(seconds, 3)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{int(minutes)}m{sec_text}"
    return sec_text


def estimate_tokens(text: str) -> int:
    """Deterministic stand-in for a tokenizer: about four characters a token."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_article(_type_name(value))} "
        "instead.",
        param=param,
        code="invalid_type",
    )


def _article(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _missing(param: str) -> ApiError:
    return ApiError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _invalid_value(param: str, value: Any, supported: Iterable[str]) -> ApiError:
    options = [f"'{s}'" for s in supported]
    listed = ", ".join(options[:-1]) + (", and " if len(options) > 2 else " and ") + options[-1]
    return ApiError(
        400,
        f"Invalid value: '{value}'. Supported values are: {listed}.",
        param=param,
        code="invalid_value",
    )


def _int_param(body: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(name, "an integer", value)
    if value < lo:
        raise ApiError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {lo}, "
            f"but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if value > hi:
        raise ApiError(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {hi}, "
            f"but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return ""


def _moderation_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                out.append(item["text"])
        return out
    return []


def _model_error(model: str, family: str, state: OpenAIState) -> ApiError:
    if model in state.retired_models:
        return ApiError(
            404,
            f"The model `{model}` has been deprecated, learn more here: "
            "https://platform.openai.com/docs/deprecations",
            code="model_not_found",
        )
    if state._known_model(model):
        return ApiError(
            404,
            f"The model `{model}` is not supported by the {family} endpoint.",
            param="model",
            code="model_not_found",
        )
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def _require_model(body: Mapping[str, Any], allowed: set[str], family: str, st: OpenAIState) -> str:
    if "model" not in body or body["model"] is None:
        raise _missing("model")
    model = body["model"]
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    if model not in allowed:
        raise _model_error(model, family, st)
    return model


# --------------------------------------------------------------------------------------------
# JSON schema: strict-mode checks, a small validator and an instance synthesizer
# --------------------------------------------------------------------------------------------

_SCHEMA_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PRIMARY_TEXT_FIELDS = ("text", "tweet", "tweet_text", "content", "body", "message", "post")


def _resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ValueError(f"unsupported $ref {ref!r}")
        node: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"unresolvable $ref {ref!r}")
            node = node[part]
        schema = node
        seen += 1
    if not isinstance(schema, dict):
        raise ValueError("schema node is not an object")
    return schema


def strict_schema_problem(schema: Any, root: Mapping[str, Any] | None = None) -> str | None:
    """The first reason ``schema`` is not valid for strict structured outputs, or None.
    Messages follow the real API's wording."""
    if not isinstance(schema, dict):
        return "schema must be a JSON Schema object"
    root = root if root is not None else schema
    problems: list[str] = []

    def walk(node: Any, context: tuple[str, ...]) -> None:
        if problems or not isinstance(node, dict):
            return
        ctx = "(" + ", ".join(f"'{c}'" for c in context) + ")"
        if "$ref" in node:
            try:
                _resolve(node, root)
            except ValueError as exc:
                problems.append(f"In context={ctx}, {exc}.")
            return
        types = node.get("type")
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if is_object or "properties" in node:
            if node.get("additionalProperties") is not False:
                problems.append(
                    f"In context={ctx}, 'additionalProperties' is required to be supplied "
                    "and to be false."
                )
                return
            props = node.get("properties") or {}
            required = node.get("required") or []
            missing = [k for k in props if k not in required]
            if missing:
                problems.append(
                    f"In context={ctx}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'."
                )
                return
            for key, sub in props.items():
                walk(sub, (*context, "properties", key))
        if isinstance(node.get("items"), dict):
            walk(node["items"], (*context, "items"))
        for keyword in ("anyOf", "allOf"):
            for i, sub in enumerate(node.get(keyword) or []):
                walk(sub, (*context, keyword, str(i)))
        for keyword in ("$defs", "definitions"):
            for name, sub in (node.get(keyword) or {}).items():
                walk(sub, (*context, keyword, name))

    walk(schema, ())
    if not problems:
        root_type = schema.get("type")
        if root_type != "object":
            return "In context=(), schema must be a JSON Schema of 'type: \"object\"', got " + (
                f"'type: \"{root_type}\"'." if root_type else "no type."
            )
    return problems[0] if problems else None


def validate_instance(
    instance: Any, schema: Any, root: Mapping[str, Any] | None = None
) -> list[str]:
    """Errors of ``instance`` against ``schema`` (the subset structured outputs uses)."""
    root = root if root is not None else schema
    errors: list[str] = []

    def check(value: Any, node: Any, path: str) -> None:
        node = _resolve(node, root)
        if "anyOf" in node:
            if not any(not _errs(value, sub, path) for sub in node["anyOf"]):
                errors.append(f"{path}: matches no anyOf variant")
            return
        for sub in node.get("allOf") or []:
            check(value, sub, path)
        if "const" in node and value != node["const"]:
            errors.append(f"{path}: expected const {node['const']!r}")
        if "enum" in node and value not in node["enum"]:
            errors.append(f"{path}: {value!r} not in enum")
        types = node.get("type")
        if types is not None:
            allowed = types if isinstance(types, list) else [types]
            actual = _type_name(value)
            ok = actual in allowed or (actual == "integer" and "number" in allowed)
            if not ok:
                errors.append(f"{path}: expected {allowed}, got {actual}")
                return
        if isinstance(value, dict):
            props = node.get("properties") or {}
            for key in node.get("required") or []:
                if key not in value:
                    errors.append(f"{path}: missing {key!r}")
            for key, sub_value in value.items():
                if key in props:
                    check(sub_value, props[key], f"{path}.{key}")
                elif node.get("additionalProperties") is False:
                    errors.append(f"{path}: unexpected property {key!r}")
        elif isinstance(value, list):
            if "minItems" in node and len(value) < node["minItems"]:
                errors.append(f"{path}: fewer than {node['minItems']} items")
            if "maxItems" in node and len(value) > node["maxItems"]:
                errors.append(f"{path}: more than {node['maxItems']} items")
            if isinstance(node.get("items"), dict):
                for i, item in enumerate(value):
                    check(item, node["items"], f"{path}[{i}]")
        elif isinstance(value, str):
            if "minLength" in node and len(value) < node["minLength"]:
                errors.append(f"{path}: shorter than {node['minLength']}")
            if "maxLength" in node and len(value) > node["maxLength"]:
                errors.append(f"{path}: longer than {node['maxLength']}")
            if "pattern" in node and not re.search(node["pattern"], value):
                errors.append(f"{path}: does not match {node['pattern']!r}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if "minimum" in node and value < node["minimum"]:
                errors.append(f"{path}: below minimum")
            if "maximum" in node and value > node["maximum"]:
                errors.append(f"{path}: above maximum")

    def _errs(value: Any, node: Any, path: str) -> list[str]:
        before = len(errors)
        check(value, node, path)
        new = errors[before:]
        del errors[before:]
        return new

    check(instance, schema, "$")
    return errors


def _primary_text_key(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str | None:
    props = schema.get("properties") or {}
    string_keys = []
    for key, sub in props.items():
        try:
            node = _resolve(sub, root)
        except ValueError:
            continue
        types = node.get("type")
        is_string = types == "string" or (isinstance(types, list) and "string" in types)
        if is_string and "enum" not in node and "const" not in node:
            string_keys.append(key)
    for name in _PRIMARY_TEXT_FIELDS:
        if name in string_keys:
            return name
    return string_keys[0] if string_keys else None


def _fit_string(text: str, node: Mapping[str, Any]) -> str:
    max_len = node.get("maxLength")
    if isinstance(max_len, int) and len(text) > max_len:
        text = text[:max_len]
    min_len = node.get("minLength")
    if isinstance(min_len, int) and len(text) < min_len:
        text = text + "." * (min_len - len(text))
    return text


def synthesize_instance(schema: Mapping[str, Any], text: str) -> Any:
    """An instance of ``schema`` carrying ``text`` in its main string field."""
    root = schema

    def build(node_in: Any, name: str, primary: bool) -> Any:
        node = _resolve(node_in, root)
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return node["enum"][0]
        if "anyOf" in node:
            variants = [_resolve(v, root) for v in node["anyOf"]]
            non_null = [v for v in variants if v.get("type") != "null"]
            return build(non_null[0], name, primary) if non_null else None
        if node.get("allOf"):
            merged: dict[str, Any] = {}
            for sub in node["allOf"]:
                merged.update(_resolve(sub, root))
            return build(merged, name, primary)
        types = node.get("type")
        if isinstance(types, list):
            non_null_types = [t for t in types if t != "null"]
            types = non_null_types[0] if non_null_types else "null"
        if types == "object" or (types is None and "properties" in node):
            main = _primary_text_key(node, root) if primary else None
            return {
                key: build(sub, key, key == main)
                for key, sub in (node.get("properties") or {}).items()
            }
        if types == "array":
            lo = node.get("minItems", 1)
            hi = node.get("maxItems", max(lo, 1))
            count = max(0, min(max(lo, 1), hi))
            item_schema = node.get("items") or {"type": "string"}
            return [build(item_schema, name, False) for _ in range(count)]
        if types == "string":
            if primary:
                return _fit_string(text, node)
            return _fit_string(_filler_text(name, text), node)
        if types == "integer":
            return int(max(node.get("minimum", 0), min(node.get("maximum", 0), 0)))
        if types == "number":
            return float(max(node.get("minimum", 0.0), min(node.get("maximum", 0.0), 0.0)))
        if types == "boolean":
            return False
        if types == "null":
            return None
        return text

    return build(schema, "", True)


def _filler_text(name: str, text: str) -> str:
    lowered = name.lower()
    snippet = text[:100]
    if "alt" in lowered:
        return f"Sandbox illustration for: {snippet}"
    if "prompt" in lowered or "image" in lowered:
        return f"A simple illustration of: {snippet}"
    if "hashtag" in lowered or "tag" in lowered:
        return "sandbox"
    if "reason" in lowered or "explanation" in lowered or "rationale" in lowered:
        return "sandbox reasoning"
    return f"sandbox {name}".strip()


def default_chat_text(user: str) -> str:
    """Deterministic text for a prompt when nothing is scripted (well under 280 chars)."""
    collapsed = " ".join(user.split())
    digest = hashlib.sha256(user.encode()).hexdigest()[:6]
    snippet = collapsed[:100].rstrip()
    return f"Sandbox take #{digest}: {snippet}" if snippet else f"Sandbox take #{digest}"


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

_OUTPUT_TOKENS_1024 = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 6240, "max": 8320}
_IMAGE_CACHE: OrderedDict[tuple[str, int, int, int, str], bytes] = OrderedDict()
_IMAGE_CACHE_SIZE = 64


def parse_size(size: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", size)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def _check_size(model: str, size: Any) -> tuple[int, int]:
    if size is None or size == "auto":
        return 1024, 1024
    if not isinstance(size, str):
        raise _invalid_type("size", "a string", size)
    if model not in FLEXIBLE_SIZE_IMAGE_MODELS:
        if size not in STANDARD_IMAGE_SIZES:
            raise _invalid_value("size", size, STANDARD_IMAGE_SIZES)
        dims = parse_size(size)
        assert dims is not None
        return dims
    dims = parse_size(size)
    if dims is None:
        raise ApiError(
            400,
            f"Invalid size '{size}'. Expected 'auto' or a WIDTHxHEIGHT string such as '1536x864'.",
            param="size",
            code="invalid_value",
        )
    width, height = dims
    problem = None
    if width % 16 or height % 16:
        problem = "width and height must both be divisible by 16"
    elif max(width, height) > 3 * min(width, height):
        problem = "the aspect ratio must be between 1:3 and 3:1"
    elif max(width, height) > MAX_IMAGE_EDGE:
        problem = f"the longest edge must be at most {MAX_IMAGE_EDGE} pixels"
    elif width * height > MAX_IMAGE_PIXELS:
        problem = f"the image must have at most {MAX_IMAGE_PIXELS} pixels"
    elif width * height < MIN_IMAGE_PIXELS:
        problem = f"the image must have at least {MIN_IMAGE_PIXELS} pixels"
    if problem:
        raise ApiError(
            400, f"Invalid size '{size}': {problem}.", param="size", code="invalid_value"
        )
    return width, height


def render_image(prompt: str, width: int, height: int, index: int = 0, fmt: str = "png") -> bytes:
    """A deterministic picture for ``prompt``: same prompt, size and index, same bytes."""
    key = (prompt, width, height, index, fmt)
    cached = _IMAGE_CACHE.get(key)
    if cached is not None:
        _IMAGE_CACHE.move_to_end(key)
        return cached
    seed = hashlib.sha256(f"{prompt}\x00{width}x{height}\x00{index}".encode()).digest()
    rng = random.Random(seed)

    def colour() -> tuple[int, int, int]:
        return rng.randrange(256), rng.randrange(256), rng.randrange(256)

    top, bottom = colour(), colour()
    mask = Image.linear_gradient("L").resize((width, height))
    img = Image.composite(
        Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask
    )
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(5, 10)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width - 1, x0 + rng.randint(width // 12, width // 3))
        y1 = min(height - 1, y0 + rng.randint(height // 12, height // 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour())
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour())
    font = ImageFont.load_default(size=max(12, min(width, height) // 24))
    label = f"SANDBOX {seed.hex()[:8]}"
    draw.rectangle((0, 0, width, max(20, min(width, height) // 14)), fill=(0, 0, 0))
    draw.text((8, 4), label, fill=(255, 255, 255), font=font)
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=90)
    elif fmt == "webp":
        img.save(buf, format="WEBP", quality=90)
    else:
        img.save(buf, format="PNG")
    data = buf.getvalue()
    _IMAGE_CACHE[key] = data
    if len(_IMAGE_CACHE) > _IMAGE_CACHE_SIZE:
        _IMAGE_CACHE.popitem(last=False)
    return data


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------

STATE_KEY = web.AppKey("openai_state", OpenAIState)
_SHUTDOWN_KEY = web.AppKey("openai_shutdown", asyncio.Event)

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
    "was not valid JSON. If you have trouble figuring out how to fix this, please contact us "
    "through our help center at help.openai.com.)"
)
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username. You can obtain an API key from https://platform.openai.com/account/api-keys."
)
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


_DROPPED = 599  # internal marker: the "disconnect" fault answered nothing


def _mask_key(key: str) -> str:
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 12}{key[-4:]}"


class _Handlers:
    def __init__(self, app: web.Application) -> None:
        self.app = app

    @property
    def state(self) -> OpenAIState:
        return self.app[STATE_KEY]

    async def _pause(self, seconds: float) -> None:
        """Sleep that ends early when the app shuts down (so cleanup never waits on it)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.app[_SHUTDOWN_KEY].wait(), timeout=seconds)

    async def run(
        self,
        request: web.Request,
        endpoint: str,
        produce: Callable[[Any, dict[str, str]], Awaitable[tuple[dict[str, Any], int]]],
        *,
        needs_body: bool = True,
    ) -> web.StreamResponse:
        st = self.state
        started = time.monotonic()
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        headers_seen = {
            k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"
        }
        rec = RecordedRequest(
            seq=st._next_seq(),
            endpoint=endpoint,
            method=request.method,
            path=request.path,
            headers=headers_seen,
            body=body,
            status=0,
            authorized=False,
            fault=None,
            at=time.time(),
        )
        st.requests.append(rec)
        request_id = "req_" + secrets.token_hex(16)
        base_headers = {"x-request-id": request_id, "openai-version": "2020-10-01"}
        response: web.StreamResponse
        try:
            response = await self._dispatch(
                request, endpoint, raw, body, rec, produce, base_headers, needs_body
            )
        except ApiError as exc:
            exc.headers = {**base_headers, **exc.headers}
            response = exc.response()
        status = 0 if response.status == _DROPPED else response.status
        if response.status < 400:
            response.headers["openai-processing-ms"] = str(int((time.monotonic() - started) * 1000))
        await st._answered(rec, status)
        return response

    async def _dispatch(
        self,
        request: web.Request,
        endpoint: str,
        raw: bytes,
        body: Any,
        rec: RecordedRequest,
        produce: Callable[[Any, dict[str, str]], Awaitable[tuple[dict[str, Any], int]]],
        base_headers: dict[str, str],
        needs_body: bool,
    ) -> web.StreamResponse:
        st = self.state
        auth = request.headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        if not auth or scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, _NO_KEY)
        key = key.strip()
        if key not in st.api_keys:
            raise ApiError(
                401,
                f"Incorrect API key provided: {_mask_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        rec.authorized = True

        fault = st._take_fault(endpoint)
        if fault is not None:
            rec.fault = fault.kind
            faulted = await self._fault_response(request, fault, body, base_headers)
            if faulted is not None:
                return faulted

        if needs_body:
            if not raw or isinstance(body, str):
                raise ApiError(400, _BAD_JSON)
            if not isinstance(body, dict):
                raise ApiError(
                    400,
                    f"Invalid type for body: expected an object, but got "
                    f"{_article(_type_name(body))} instead.",
                    code="invalid_type",
                )
        rl_headers, exceeded = st._rate_window(0, count=False)
        if exceeded:
            model = body.get("model") if isinstance(body, dict) else None
            limit = st.requests_per_minute
            raise ApiError(
                429,
                f"Rate limit reached for {model or 'requests'} in organization org-sandbox on "
                f"requests per min (RPM): Limit {limit}, Used {limit}, Requested 1. Please try "
                f"again in {rl_headers['x-ratelimit-reset-requests']}. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=rl_headers,
            )
        payload, tokens = await produce(body, base_headers)
        rl_headers, _ = st._rate_window(tokens, count=True)
        await self._pause(st.latency.get(endpoint, 0.0))
        return web.json_response(payload, headers={**base_headers, **rl_headers})

    async def _fault_response(
        self, request: web.Request, fault: Fault, body: Any, base_headers: dict[str, str]
    ) -> web.StreamResponse | None:
        st = self.state
        model = body.get("model") if isinstance(body, dict) else None
        if fault.kind == "rate_limit":
            wait = fault.retry_after if fault.retry_after is not None else 1.0
            rl_headers, _ = st._rate_window(0, count=False)
            headers = {
                **rl_headers,
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": format_reset(wait),
                "retry-after": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(round(wait * 1000)),
            }
            raise ApiError(
                429,
                f"Rate limit reached for {model or 'requests'} in organization org-sandbox on "
                f"requests per min (RPM): Limit {st.requests_per_minute}, Used "
                f"{st.requests_per_minute}, Requested 1. Please try again in "
                f"{format_reset(wait)}. Visit https://platform.openai.com/account/rate-limits "
                "to learn more.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if fault.kind == "quota":
            raise ApiError(
                429,
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                type_="insufficient_quota",
                code="insufficient_quota",
            )
        if fault.kind == "server_error":
            raise ApiError(
                500,
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
            )
        if fault.kind == "overloaded":
            headers = {}
            if fault.retry_after is not None:
                headers["retry-after"] = str(max(1, math.ceil(fault.retry_after)))
                headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
            raise ApiError(
                503,
                "The engine is currently overloaded, please try again later.",
                type_="server_error",
                headers=headers,
            )
        if fault.kind == "bad_gateway":
            return web.Response(
                status=502, text=_BAD_GATEWAY_HTML, content_type="text/html", headers=base_headers
            )
        if fault.kind == "disconnect":
            # Drop the connection without a response; nothing can be written after this.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=_DROPPED)
        # "timeout": stall, then answer normally unless the client has given up meanwhile.
        await self._pause(st.hang_seconds)
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=_DROPPED)
        return None

    # -- chat ----------------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.run(request, "chat", self._chat)

    async def _chat(self, body: Any, _h: dict[str, str]) -> tuple[dict[str, Any], int]:
        st = self.state
        if "messages" not in body:
            raise _missing("messages")
        model = _require_model(body, st.chat_models, "chat completions", st)
        messages = body["messages"]
        if not isinstance(messages, list):
            raise _invalid_type("messages", "an array", messages)
        if not messages:
            raise ApiError(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.",
                param="messages",
                code="empty_array",
            )
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                raise _invalid_type(f"messages[{i}]", "an object", msg)
            if "role" not in msg:
                raise _missing(f"messages[{i}].role")
            if msg["role"] not in MESSAGE_ROLES:
                raise _invalid_value(f"messages[{i}].role", msg["role"], MESSAGE_ROLES)
            if msg["role"] in ("system", "developer", "user") and "content" not in msg:
                raise _missing(f"messages[{i}].content")
            msg_content = msg.get("content")
            if msg_content is not None and not isinstance(msg_content, str | list):
                raise _invalid_type(f"messages[{i}].content", "a string or array", msg_content)
        if body.get("stream"):
            raise ApiError(
                400, "The sandbox does not stream chat completions.", param="stream", code=None
            )
        n = _int_param(body, "n", 1, 1, 128)
        temperature = body.get("temperature")
        if temperature is not None:
            if isinstance(temperature, bool) or not isinstance(temperature, int | float):
                raise _invalid_type("temperature", "a decimal", temperature)
            if not 0 <= temperature <= 2:
                raise ApiError(
                    400,
                    f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                    f"but got {temperature} instead."
                    if temperature > 2
                    else f"Invalid 'temperature': decimal below minimum value. Expected a value "
                    f">= 0, but got {temperature} instead.",
                    param="temperature",
                    code="decimal_above_max_value"
                    if temperature > 2
                    else "decimal_below_min_value",
                )
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise ApiError(
                400,
                "Invalid 'max_completion_tokens': expected a positive integer, got "
                f"{max_tokens!r}.",
                param="max_completion_tokens",
                code="invalid_value",
            )

        mode, schema, schema_name = self._response_format(body.get("response_format"), messages)
        system = "\n".join(
            _content_text(m.get("content"))
            for m in messages
            if m.get("role") in ("system", "developer")
        )
        users = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
        chat_request = ChatRequest(
            model=model,
            messages=messages,
            system=system,
            user=users[-1] if users else "",
            schema=schema,
            schema_name=schema_name,
            body=body,
        )
        item = self._next_script(chat_request)
        content: str | None
        refusal: str | None = None
        if isinstance(item, Refusal):
            content, refusal = None, item.message
        elif isinstance(item, RawContent):
            content = item.content
        elif isinstance(item, dict | list):
            content = json.dumps(item, ensure_ascii=False)
        else:
            text = item
            if mode == "json_schema" and schema is not None:
                instance = synthesize_instance(schema, text)
                content = json.dumps(instance, ensure_ascii=False)
            elif mode == "json_object":
                content = json.dumps({"text": text}, ensure_ascii=False)
            else:
                content = text

        finish_reason = "stop"
        out_text = content if content is not None else (refusal or "")
        completion_tokens = estimate_tokens(out_text)
        if max_tokens is not None and completion_tokens > max_tokens and content is not None:
            content = content[: max_tokens * 4]
            completion_tokens = max_tokens
            finish_reason = "length"
        prompt_tokens = 3 + sum(
            4 + estimate_tokens(_content_text(m.get("content"))) for m in messages
        )
        if schema is not None:
            prompt_tokens += estimate_tokens(json.dumps(schema))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "refusal": refusal,
            "annotations": [],
        }
        payload = {
            "id": "chatcmpl-" + secrets.token_urlsafe(21).replace("-", "a").replace("_", "b"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish_reason}
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens * n,
                "total_tokens": prompt_tokens + completion_tokens * n,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox",
        }
        return payload, prompt_tokens + completion_tokens * n

    def _response_format(
        self, fmt: Any, messages: list[dict[str, Any]]
    ) -> tuple[str, dict[str, Any] | None, str | None]:
        if fmt is None:
            return "text", None, None
        if not isinstance(fmt, dict):
            raise _invalid_type("response_format", "an object", fmt)
        kind = fmt.get("type")
        if kind is None:
            raise _missing("response_format.type")
        if kind == "text":
            return "text", None, None
        if kind == "json_object":
            all_text = " ".join(_content_text(m.get("content")) for m in messages)
            if "json" not in all_text.lower():
                raise ApiError(
                    400,
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                    param="messages",
                )
            return "json_object", None, None
        if kind != "json_schema":
            raise _invalid_value(
                "response_format.type", kind, ("json_schema", "json_object", "text")
            )
        spec = fmt.get("json_schema")
        if spec is None:
            raise _missing("response_format.json_schema")
        if not isinstance(spec, dict):
            raise _invalid_type("response_format.json_schema", "an object", spec)
        name = spec.get("name")
        if name is None:
            raise _missing("response_format.json_schema.name")
        if not isinstance(name, str) or not _SCHEMA_NAME_RE.match(name):
            raise ApiError(
                400,
                f"Invalid 'response_format.json_schema.name': string does not match pattern. "
                f"Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$', got {name!r}.",
                param="response_format.json_schema.name",
                code="invalid_value",
            )
        schema = spec.get("schema")
        if schema is None:
            schema = {"type": "object", "properties": {}, "additionalProperties": False}
        if not isinstance(schema, dict):
            raise _invalid_type("response_format.json_schema.schema", "an object", schema)
        if spec.get("strict") is True:
            problem = strict_schema_problem(schema)
            if problem:
                raise ApiError(
                    400,
                    f"Invalid schema for response_format '{name}': {problem}",
                    param="response_format",
                    code="invalid_json_schema",
                )
        return "json_schema", schema, name

    def _next_script(self, chat_request: ChatRequest) -> ChatScript:
        st = self.state
        if st.refusals_pending > 0:
            st.refusals_pending -= 1
            return Refusal(st.refusal_message)
        if st.chat_queue:
            return st.chat_queue.popleft()
        if st.chat_responder is not None:
            answer = st.chat_responder(chat_request)
            if answer is not None:
                return answer
        return default_chat_text(chat_request.user)

    # -- images --------------------------------------------------------------------------------
    async def images(self, request: web.Request) -> web.StreamResponse:
        return await self.run(request, "images", self._images)

    async def _images(self, body: Any, _h: dict[str, str]) -> tuple[dict[str, Any], int]:
        st = self.state
        if "prompt" not in body or body["prompt"] is None:
            raise _missing("prompt")
        prompt = body["prompt"]
        if not isinstance(prompt, str):
            raise _invalid_type("prompt", "a string", prompt)
        if not prompt.strip():
            raise ApiError(
                400,
                "Invalid 'prompt': empty string. Expected a string with minimum length 1, but "
                "got an empty string instead.",
                param="prompt",
                code="empty_string",
            )
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ApiError(
                400,
                f"Invalid 'prompt': string too long. Expected a string with maximum length "
                f"{MAX_PROMPT_CHARS}, but got a string with length {len(prompt)} instead.",
                param="prompt",
                code="string_above_max_length",
            )
        if body.get("model") is None:
            body = {**body, "model": st.default_image_model}
        model = _require_model(body, st.image_models, "images", st)
        n = _int_param(body, "n", 1, 1, 10)
        width, height = _check_size(model, body.get("size"))
        quality = body.get("quality") or "auto"
        qualities: tuple[str, ...] = ("low", "medium", "high", "auto")
        if model.startswith("gpt-image-2.5"):
            qualities = ("low", "medium", "high", "xhigh", "max", "auto")
        if quality not in qualities:
            raise _invalid_value("quality", quality, qualities)
        if body.get("response_format") not in (None, "b64_json"):
            raise ApiError(
                400,
                f"Invalid value: '{body['response_format']}'. GPT image models always return "
                "base64-encoded images; 'response_format' is not supported for them.",
                param="response_format",
                code="invalid_value",
            )
        fmt = body.get("output_format") or "png"
        if fmt not in ("png", "jpeg", "webp"):
            raise _invalid_value("output_format", fmt, ("png", "jpeg", "webp"))
        background = body.get("background") or "auto"
        if background not in ("transparent", "opaque", "auto"):
            raise _invalid_value("background", background, ("transparent", "opaque", "auto"))
        if body.get("stream"):
            raise ApiError(400, "The sandbox does not stream images.", param="stream")

        effective_quality = "medium" if quality == "auto" else quality
        images = await asyncio.gather(
            *(asyncio.to_thread(render_image, prompt, width, height, i, fmt) for i in range(n))
        )
        out_per_image = math.ceil(
            _OUTPUT_TOKENS_1024[effective_quality] * (width * height) / (1024 * 1024)
        )
        text_tokens = estimate_tokens(prompt)
        output_tokens = out_per_image * n
        payload = {
            "created": int(time.time()),
            "background": "opaque" if background == "auto" else background,
            "data": [{"b64_json": base64.b64encode(img).decode("ascii")} for img in images],
            "output_format": fmt,
            "quality": effective_quality,
            "size": f"{width}x{height}",
            "usage": {
                "input_tokens": text_tokens,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": text_tokens},
                "output_tokens": output_tokens,
                "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
                "total_tokens": text_tokens + output_tokens,
            },
        }
        return payload, text_tokens + output_tokens

    # -- moderations ---------------------------------------------------------------------------
    async def moderations(self, request: web.Request) -> web.StreamResponse:
        return await self.run(request, "moderations", self._moderations)

    async def _moderations(self, body: Any, _h: dict[str, str]) -> tuple[dict[str, Any], int]:
        st = self.state
        if "input" not in body or body["input"] is None:
            raise _missing("input")
        value = body["input"]
        if body.get("model") is None:
            body = {**body, "model": "omni-moderation-latest"}
        model = _require_model(body, st.moderation_models, "moderations", st)
        groups: list[tuple[list[str], bool]]
        if isinstance(value, str):
            groups = [([value], False)]
        elif isinstance(value, list):
            if value and all(isinstance(v, str) for v in value):
                groups = [([v], False) for v in value]
            elif value and all(isinstance(v, dict) for v in value):
                has_image = False
                for i, part in enumerate(value):
                    kind = part.get("type")
                    if kind == "text":
                        if not isinstance(part.get("text"), str):
                            raise _missing(f"input[{i}].text")
                    elif kind == "image_url":
                        has_image = True
                    else:
                        raise _invalid_value(f"input[{i}].type", kind, ("text", "image_url"))
                groups = [(_moderation_texts(value), has_image)]
            else:
                raise _invalid_type("input", "a string or array of strings or objects", value)
        else:
            raise _invalid_type("input", "a string or array", value)
        results = [self._moderate(texts, has_image) for texts, has_image in groups]
        payload = {"id": "modr-" + secrets.token_hex(12), "model": model, "results": results}
        tokens = sum(estimate_tokens(t) for texts, _ in groups for t in texts)
        return payload, tokens

    def _moderate(self, texts: list[str], has_image: bool) -> dict[str, Any]:
        joined = "\n".join(texts)
        hits: set[str] = set()
        for term, category in self.state.flagged_terms.items():
            if re.search(rf"(?<!\w){re.escape(term)}(?!\w)", joined, re.IGNORECASE):
                hits.add(category)
        digest = hashlib.sha256(joined.encode()).digest()
        scores = {
            cat: (0.97 if cat in hits else round((digest[i] + 1) / 256 * 1e-4, 8))
            for i, cat in enumerate(MODERATION_CATEGORIES)
        }
        applied: dict[str, list[str]] = {}
        for cat in MODERATION_CATEGORIES:
            kinds: list[str] = ["text"] if texts else []
            if has_image and cat in _IMAGE_CAPABLE_CATEGORIES:
                kinds.append("image")
            applied[cat] = kinds
        return {
            "flagged": bool(hits),
            "categories": {cat: cat in hits for cat in MODERATION_CATEGORIES},
            "category_scores": scores,
            "category_applied_input_types": applied,
        }

    # -- models --------------------------------------------------------------------------------
    async def list_models(self, request: web.Request) -> web.StreamResponse:
        async def produce(_b: Any, _h: dict[str, str]) -> tuple[dict[str, Any], int]:
            st = self.state
            names = sorted(st.chat_models | st.image_models | st.moderation_models)
            return {"object": "list", "data": [_model_obj(m) for m in names]}, 0

        return await self.run(request, "models", produce, needs_body=False)

    async def get_model(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["model"]

        async def produce(_b: Any, _h: dict[str, str]) -> tuple[dict[str, Any], int]:
            if not self.state._known_model(name):
                raise _model_error(name, "models", self.state)
            return _model_obj(name), 0

        return await self.run(request, "models", produce, needs_body=False)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        return error_response(
            404,
            f"Invalid URL ({request.method} {request.path})",
            code=None,
        )

    # -- control -------------------------------------------------------------------------------
    async def ctl_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.summary())

    async def ctl_reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response(self.state.summary())

    async def ctl_requests(self, request: web.Request) -> web.Response:
        endpoint = request.query.get("endpoint")
        return web.json_response(
            {"requests": [r.to_json() for r in self.state.requests_for(endpoint)]}
        )

    async def ctl_clear_requests(self, request: web.Request) -> web.Response:
        self.state.clear_requests()
        return web.json_response({"requests": []})

    async def _ctl_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise web.HTTPBadRequest(text="body must be JSON") from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body

    async def ctl_chat_queue(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        items: list[ChatScript] = []
        for item in body.get("items", []):
            if isinstance(item, str):
                items.append(item)
            elif isinstance(item, dict) and "refusal" in item:
                items.append(Refusal(str(item["refusal"] or DEFAULT_REFUSAL)))
            elif isinstance(item, dict) and "raw" in item:
                items.append(RawContent(str(item["raw"])))
            elif isinstance(item, dict) and "content" in item:
                items.append(item["content"])
            else:
                raise web.HTTPBadRequest(
                    text="items are strings or {refusal: str} | {raw: str} | {content: json}"
                )
        self.state.queue_chat(*items)
        return web.json_response(self.state.summary())

    async def ctl_refuse(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        self.state.refuse_next(int(body.get("count", 1)), str(body.get("message", DEFAULT_REFUSAL)))
        return web.json_response(self.state.summary())

    async def ctl_flagged_terms(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        if body.get("replace"):
            self.state.flagged_terms.clear()
        terms = body.get("terms", [])
        try:
            if isinstance(terms, dict):
                self.state.flag_terms({str(k): str(v) for k, v in terms.items()})
            else:
                self.state.flag_terms(
                    [str(t) for t in terms], str(body.get("category", "harassment"))
                )
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response(self.state.summary())

    async def ctl_latency(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        try:
            self.state.set_latency(**{str(k): float(v) for k, v in body.items()})
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response(self.state.summary())

    async def ctl_faults(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        retry_after = body.get("retry_after")
        try:
            self.state.inject_fault(
                body.get("kind", "server_error"),
                int(body.get("count", 1)),
                endpoint=body.get("endpoint"),
                retry_after=float(retry_after) if retry_after is not None else None,
            )
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from exc
        return web.json_response(self.state.summary())

    async def ctl_config(self, request: web.Request) -> web.Response:
        body = await self._ctl_body(request)
        st = self.state
        if "hang_seconds" in body:
            st.hang_seconds = float(body["hang_seconds"])
        if "requests_per_minute" in body:
            st.requests_per_minute = max(1, int(body["requests_per_minute"]))
        if "tokens_per_minute" in body:
            st.tokens_per_minute = max(1, int(body["tokens_per_minute"]))
        for key, target in (
            ("chat_models", st.chat_models),
            ("image_models", st.image_models),
            ("moderation_models", st.moderation_models),
            ("api_keys", st.api_keys),
        ):
            if key in body:
                target.update(str(v) for v in body[key])
        return web.json_response(st.summary())


def _model_obj(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}


def create_app(state: OpenAIState | None = None) -> web.Application:
    """The stand-in as an aiohttp app. Tests keep ``state`` and drive it directly."""
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[STATE_KEY] = state if state is not None else OpenAIState()
    app[_SHUTDOWN_KEY] = asyncio.Event()
    h = _Handlers(app)

    async def on_shutdown(app: web.Application) -> None:
        app[_SHUTDOWN_KEY].set()

    app.on_shutdown.append(on_shutdown)
    app.router.add_post("/v1/chat/completions", h.chat)
    app.router.add_post("/v1/images/generations", h.images)
    app.router.add_post("/v1/moderations", h.moderations)
    app.router.add_get("/v1/models", h.list_models)
    app.router.add_get("/v1/models/{model}", h.get_model)
    app.router.add_get("/_sandbox/state", h.ctl_state)
    app.router.add_post("/_sandbox/reset", h.ctl_reset)
    app.router.add_get("/_sandbox/requests", h.ctl_requests)
    app.router.add_delete("/_sandbox/requests", h.ctl_clear_requests)
    app.router.add_post("/_sandbox/chat/queue", h.ctl_chat_queue)
    app.router.add_post("/_sandbox/chat/refuse", h.ctl_refuse)
    app.router.add_post("/_sandbox/moderation/flagged-terms", h.ctl_flagged_terms)
    app.router.add_post("/_sandbox/latency", h.ctl_latency)
    app.router.add_post("/_sandbox/faults", h.ctl_faults)
    app.router.add_post("/_sandbox/config", h.ctl_config)
    app.router.add_route("*", "/v1/{tail:.*}", h.not_found)
    return app


@dataclass
class RunningServer:
    url: str
    port: int
    state: OpenAIState
    runner: web.AppRunner = field(repr=False)

    @property
    def base_url(self) -> str:
        """What to give ``OPENAI_BASE_URL`` / ``AsyncOpenAI(base_url=...)``."""
        return f"{self.url}/v1"


@contextlib.asynccontextmanager
async def serve(
    state: OpenAIState | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningServer]:
    """Run the stand-in on ``host:port`` (0 picks a free port) for the duration of the block."""
    state = state if state is not None else OpenAIState()
    runner = web.AppRunner(create_app(state), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    try:
        yield RunningServer(
            url=f"http://{host}:{bound_port}", port=bound_port, state=state, runner=runner
        )
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible stand-in (SANDBOX)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"accepted bearer key (repeatable; default {DEFAULT_API_KEY})",
    )
    parser.add_argument("--chat-latency", type=float, default=0.0, help="seconds per completion")
    parser.add_argument("--image-latency", type=float, default=0.0, help="seconds per image call")
    parser.add_argument(
        "--flag", action="append", default=[], help="term moderation flags (repeatable)"
    )
    args = parser.parse_args(argv)
    state = OpenAIState(api_keys=args.api_keys or (DEFAULT_API_KEY,))
    state.set_latency(chat=args.chat_latency, images=args.image_latency)
    if args.flag:
        state.flag_terms(args.flag)

    run_app(
        create_app(state),
        what="OpenAI stand-in",
        host=args.host,
        port=args.port,
        ready=f"[SANDBOX] OpenAI stand-in on http://{args.host}:{args.port}/v1 "
        f"(keys: {len(state.api_keys)}; control: /_sandbox/state)",
    )


if __name__ == "__main__":
    main()
