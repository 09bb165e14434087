"""The OpenAI stand-in's scripted state: what tests queue and inject, and what it records.

`OpenAIState` is driven in-process by tests (and mirrored by the `/_sandbox/...` control
endpoints): chat scripts (`Refusal`, `RawContent`, text or JSON) or a responder of a
`ChatRequest`, flagged moderation terms, latency, `Fault`s for the next requests, the
per-minute request window, and every request as a `RecordedRequest` (the key never stored).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.openai_api.catalog import (
    CHAT_MODELS,
    DEFAULT_API_KEY,
    DEFAULT_REFUSAL,
    ENDPOINTS,
    FAULT_KINDS,
    IMAGE_MODELS,
    MODERATION_CATEGORIES,
    MODERATION_MODELS,
    RETIRED_MODELS,
    FaultKind,
)
from sandbox.openai_api.errors import format_reset
from sandbox.openai_api.params import _content_text, _moderation_texts


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
