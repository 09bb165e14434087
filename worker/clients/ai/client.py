"""AIClient: structured tweet text, images and moderation on the openai SDK (see the package
docstring for the API choice, retries and cost).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pydantic
from loguru import logger
from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from worker.metrics import API_CALLS

if TYPE_CHECKING:
    import openai
    from openai import AsyncOpenAI

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
from worker.clients.ai.limits import RateLimitInfo, RetryPolicy, Sleep, parse_retry_after
from worker.clients.ai.pricing import Pricing, Usage

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


DEFAULT_MODERATION_MODEL = "omni-moderation-latest"


_log = logger.bind(service="openai")


@dataclass(frozen=True)
class ModerationResult:
    flagged: bool
    categories: tuple[str, ...]
    """Names of the flagged categories, OpenAI's spelling (``harassment/threatening``)."""
    scores: Mapping[str, float] = field(default_factory=dict)
    model: str = DEFAULT_MODERATION_MODEL
    usage: Usage | None = None


_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-*]{4,}")


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
