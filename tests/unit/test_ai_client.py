"""worker.clients.ai: the OpenAI client, through the real `openai` SDK against the stand-in."""

from __future__ import annotations

import email.utils
import io
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from loguru import logger
from PIL import Image
from pydantic import BaseModel, Field, SecretStr

from sandbox.openai_api import DEFAULT_API_KEY, OpenAIState, RawContent, RunningServer, serve
from worker.clients.ai import (
    AIAuthError,
    AIBadRequest,
    AIClient,
    AIInvalidOutput,
    AIQuotaExhausted,
    AIRateLimited,
    AIRefusal,
    AIUnavailable,
    ImagePrice,
    Pricing,
    RateLimitInfo,
    RetryPolicy,
    TokenPrice,
    Usage,
    parse_reset_duration,
    parse_retry_after,
)

FAST = RetryPolicy(
    max_attempts=3,
    initial_backoff=0.005,
    max_backoff=0.02,
    jitter=0.005,
    max_retry_after=1.0,
    request_timeout=2.0,
    image_timeout=5.0,
    connect_timeout=1.0,
)
SYSTEM = "You are a concise tech account."


class TweetDraft(BaseModel):
    text: str = Field(max_length=280)
    alt_text: str | None


class Recorder:
    """A sleep for tenacity that records the waits instead of sleeping through them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve(OpenAIState()) as srv:
        yield srv


@pytest.fixture
def sleeps() -> Recorder:
    return Recorder()


@pytest.fixture
async def ai(server: RunningServer, sleeps: Recorder) -> AsyncIterator[AIClient]:
    client = AIClient(api_key=DEFAULT_API_KEY, base_url=server.base_url, retry=FAST, sleep=sleeps)
    yield client
    await client.aclose()


# -- text --------------------------------------------------------------------------------------


async def test_structured_text_is_parsed_with_usage_and_cost(
    ai: AIClient, server: RunningServer
) -> None:
    server.state.queue_chat("Index your foreign keys. Future you says thanks.")
    draft, usage = await ai.generate_tweet_text(
        SYSTEM, "Topic: foreign keys", "gpt-4.1-mini", TweetDraft
    )
    assert isinstance(draft, TweetDraft)
    assert draft.text == "Index your foreign keys. Future you says thanks."
    assert usage.operation == "text"
    assert usage.model == "gpt-4.1-mini"
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.attempts == 1
    assert usage.request_id is not None and usage.request_id.startswith("req_")
    expected = (usage.input_tokens * 0.40 + usage.output_tokens * 1.60) / 1_000_000
    assert usage.cost_usd == pytest.approx(expected)
    assert usage.rate_limit is not None and usage.rate_limit.limit_requests is not None

    (req,) = server.state.requests_for("chat")
    assert req.messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Topic: foreign keys"},
    ]
    assert req.body["response_format"]["json_schema"]["strict"] is True


async def test_options_are_sent(ai: AIClient, server: RunningServer) -> None:
    await ai.generate_tweet_text(
        SYSTEM, "x", "gpt-4.1-mini", TweetDraft, max_output_tokens=200, temperature=0.7
    )
    body = server.state.requests_for("chat")[0].body
    assert body["max_completion_tokens"] == 200
    assert body["temperature"] == 0.7


async def test_refusal_raises_with_billed_usage(ai: AIClient, server: RunningServer) -> None:
    server.state.refuse_next(1, "I can't help with that.")
    with pytest.raises(AIRefusal) as info:
        await ai.generate_tweet_text(SYSTEM, "something nasty", "gpt-4.1-mini", TweetDraft)
    err = info.value
    assert err.refusal == "I can't help with that."
    assert err.retryable is False
    assert err.usage is not None and err.usage.output_tokens > 0 and err.usage.cost_usd > 0
    assert len(server.state.requests_for("chat")) == 1  # refusals are not retried


async def test_invalid_output_raises_with_raw_content(ai: AIClient, server: RunningServer) -> None:
    server.state.queue_chat(RawContent('{"text": 5}'), {"text": "y" * 300, "alt_text": None})
    with pytest.raises(AIInvalidOutput) as bad_json:
        await ai.generate_tweet_text(SYSTEM, "x", "gpt-4.1-mini", TweetDraft)
    assert bad_json.value.reason == "validation"
    assert bad_json.value.raw_content == '{"text": 5}'
    assert bad_json.value.usage is not None and bad_json.value.usage.input_tokens > 0
    assert bad_json.value.retryable is True
    with pytest.raises(AIInvalidOutput) as too_long:
        await ai.generate_tweet_text(SYSTEM, "x", "gpt-4.1-mini", TweetDraft)
    assert "280" in str(too_long.value)


async def test_token_limit_cut_off_is_invalid_output(ai: AIClient, server: RunningServer) -> None:
    server.state.queue_chat("z" * 500)
    with pytest.raises(AIInvalidOutput) as info:
        await ai.generate_tweet_text(SYSTEM, "x", "gpt-4.1-mini", TweetDraft, max_output_tokens=8)
    assert info.value.reason == "length"
    assert info.value.usage is not None and info.value.usage.output_tokens == 8


async def test_retry_with_feedback_is_visible_in_the_recorded_prompts(
    ai: AIClient, server: RunningServer
) -> None:
    server.state.queue_chat("too similar", "fresh take")
    first, u1 = await ai.generate_tweet_text(SYSTEM, "Topic: vacuum", "gpt-4.1-mini", TweetDraft)
    feedback = f"Topic: vacuum\nYour previous draft {first.text!r} was too similar; try again."
    second, u2 = await ai.generate_tweet_text(SYSTEM, feedback, "gpt-4.1-mini", TweetDraft)
    assert second.text == "fresh take"
    prompts = [r.prompt_text for r in server.state.requests_for("chat")]
    assert "too similar" not in prompts[0]
    assert "'too similar' was too similar" in prompts[1]
    total = u1 + u2
    assert total.input_tokens == u1.input_tokens + u2.input_tokens
    assert total.cost_usd == pytest.approx(u1.cost_usd + u2.cost_usd)


# -- images and moderation ---------------------------------------------------------------------


async def test_image_is_a_valid_png_of_the_requested_size(
    ai: AIClient, server: RunningServer
) -> None:
    png, usage = await ai.generate_image("a tidy server rack", "gpt-image-1.5", "1024x1536")
    img = Image.open(io.BytesIO(png))
    img.verify()
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    assert img.size == (1024, 1536)
    assert usage.operation == "image" and usage.images == 1
    assert usage.output_tokens > 0
    price = Pricing().image_price("gpt-image-1.5")
    expected = (usage.input_tokens * price.text_input + usage.output_tokens * price.output) / 1e6
    assert usage.cost_usd == pytest.approx(expected)
    body = server.state.requests_for("images")[0].body
    assert (body["model"], body["size"], body["n"]) == ("gpt-image-1.5", "1024x1536", 1)

    again, _ = await ai.generate_image("a tidy server rack", "gpt-image-1.5", "1024x1536")
    assert again == png


async def test_invalid_image_size_is_a_bad_request(ai: AIClient, server: RunningServer) -> None:
    with pytest.raises(AIBadRequest) as info:
        await ai.generate_image("x", "gpt-image-1.5", "640x480")
    assert info.value.status_code == 400
    assert info.value.param == "size"
    assert len(server.state.requests_for("images")) == 1


async def test_moderation_flags_configured_terms(ai: AIClient, server: RunningServer) -> None:
    server.state.flag_terms(["scam"], "illicit")
    server.state.flag_terms(["threat"], "harassment/threatening")
    hit = await ai.moderate("This is a SCAM and a threat")
    assert hit.flagged is True
    assert hit.categories == ("harassment/threatening", "illicit")
    assert hit.scores["illicit"] > 0.5
    clean = await ai.moderate("Vacuum your tables")
    assert clean.flagged is False and clean.categories == ()
    assert server.state.requests_for("moderations")[0].body["model"] == "omni-moderation-latest"


# -- errors ------------------------------------------------------------------------------------


async def test_bad_key_is_an_auth_error_and_never_leaks(server: RunningServer) -> None:
    secret = "sk-this-is-a-very-secret-key-QzXw"
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    client = AIClient(api_key=secret, base_url=server.base_url, retry=FAST, sleep=Recorder())
    try:
        with pytest.raises(AIAuthError) as info:
            await client.generate_tweet_text(SYSTEM, "x", "gpt-4.1-mini", TweetDraft)
    finally:
        logger.remove(sink)
        await client.aclose()
    err = info.value
    assert err.status_code == 401 and err.code == "invalid_api_key"
    assert err.retryable is False
    assert len(server.state.requests) == 1
    for text in (str(err), repr(err), err.message, *lines):
        assert secret not in text
        assert secret[-4:] not in text  # not even OpenAI's masked echo of it
    assert err.__cause__ is None and err.__suppress_context__


async def test_unknown_model_is_a_bad_request_not_retried(
    ai: AIClient, server: RunningServer, sleeps: Recorder
) -> None:
    with pytest.raises(AIBadRequest) as info:
        await ai.generate_tweet_text(SYSTEM, "x", "gpt-does-not-exist", TweetDraft)
    assert (info.value.status_code, info.value.code) == (404, "model_not_found")
    assert info.value.attempts == 1
    assert len(server.state.requests) == 1
    assert sleeps.waits == []


async def test_429_then_success_is_retried(
    ai: AIClient, server: RunningServer, sleeps: Recorder
) -> None:
    server.state.inject_fault("rate_limit", 2, endpoint="chat", retry_after=0.25)
    draft, usage = await ai.generate_tweet_text(SYSTEM, "x", "gpt-4.1-mini", TweetDraft)
    assert draft.text
    assert usage.attempts == 3
    assert [r.status for r in server.state.requests_for("chat")] == [429, 429, 200]
    # retry-after-ms honoured (plus at most 10% jitter), not the exponential backoff.
    assert len(sleeps.waits) == 2
    assert all(0.25 <= w <= 0.25 * 1.1 for w in sleeps.waits)


async def test_retry_after_is_really_waited(server: RunningServer) -> None:
    client = AIClient(api_key=DEFAULT_API_KEY, base_url=server.base_url, retry=FAST)
    server.state.inject_fault("rate_limit", 1, retry_after=0.2)
    try:
        result = await client.moderate("x")
    finally:
        await client.aclose()
    assert result.usage is not None and result.usage.attempts == 2
    first, second = server.state.requests
    assert second.at - first.at >= 0.2


async def test_503_repeatedly_gives_ai_unavailable_after_bounded_attempts(
    ai: AIClient, server: RunningServer, sleeps: Recorder
) -> None:
    server.state.inject_fault("overloaded", 10)
    with pytest.raises(AIUnavailable) as info:
        await ai.generate_tweet_text(SYSTEM, "x", "gpt-4.1-mini", TweetDraft)
    assert info.value.status_code == 503
    assert info.value.attempts == FAST.max_attempts
    assert info.value.retryable is True
    assert len(server.state.requests) == FAST.max_attempts
    assert server.state.pending_faults() == 10 - FAST.max_attempts
    # Exponential backoff with jitter: initial * 2^n + [0, jitter], capped.
    assert len(sleeps.waits) == FAST.max_attempts - 1
    assert FAST.initial_backoff <= sleeps.waits[0] <= FAST.initial_backoff + FAST.jitter
    assert 2 * FAST.initial_backoff <= sleeps.waits[1] <= FAST.max_backoff


async def test_long_retry_after_is_not_slept_through(
    ai: AIClient, server: RunningServer, sleeps: Recorder
) -> None:
    server.state.inject_fault("rate_limit", 1, retry_after=30)
    with pytest.raises(AIRateLimited) as info:
        await ai.moderate("x")
    assert info.value.retry_after == pytest.approx(30)
    assert info.value.rate_limit is not None
    assert info.value.rate_limit.remaining_requests == 0
    assert info.value.attempts == 1 and sleeps.waits == []


async def test_rate_limit_window_reset_is_used_without_retry_after(
    ai: AIClient, server: RunningServer
) -> None:
    server.state.requests_per_minute = 1
    await ai.moderate("uses the only request")
    with pytest.raises(AIRateLimited) as info:
        await ai.moderate("over the limit")
    # No retry-after header: the x-ratelimit-reset-requests of the exhausted window (~60 s)
    # is longer than max_retry_after, so the error surfaces at once with that wait.
    assert info.value.retry_after is not None and 50 < info.value.retry_after <= 60
    assert info.value.attempts == 1


async def test_quota_exhausted_is_not_retried(ai: AIClient, server: RunningServer) -> None:
    server.state.inject_fault("quota", 3)
    with pytest.raises(AIQuotaExhausted) as info:
        await ai.generate_image("x", "gpt-image-1.5")
    assert info.value.code == "insufficient_quota"
    assert info.value.retryable is False
    assert len(server.state.requests) == 1


async def test_timeouts_and_dropped_connections_are_retried(server: RunningServer) -> None:
    policy = RetryPolicy(
        max_attempts=3, initial_backoff=0.001, max_backoff=0.01, jitter=0.001, request_timeout=0.2
    )
    client = AIClient(
        api_key=DEFAULT_API_KEY, base_url=server.base_url, retry=policy, sleep=Recorder()
    )
    try:
        server.state.inject_fault("timeout", 1)
        server.state.inject_fault("disconnect", 1)
        result = await client.moderate("x")
        assert result.usage is not None and result.usage.attempts == 3
        server.state.inject_fault("timeout", 3)
        started = time.monotonic()
        with pytest.raises(AIUnavailable) as info:
            await client.moderate("x")
        assert info.value.timeout is True
        assert info.value.attempts == 3
        assert time.monotonic() - started < 3
    finally:
        await client.aclose()


async def test_bad_gateway_html_is_unavailable(ai: AIClient, server: RunningServer) -> None:
    server.state.inject_fault("bad_gateway", 3)
    with pytest.raises(AIUnavailable) as info:
        await ai.moderate("x")
    assert info.value.status_code == 502
    assert "502 Bad Gateway" in str(info.value)


async def test_connection_refused_is_unavailable() -> None:
    client = AIClient(
        api_key=DEFAULT_API_KEY, base_url="http://127.0.0.1:9/v1", retry=FAST, sleep=Recorder()
    )
    try:
        with pytest.raises(AIUnavailable) as info:
            await client.moderate("x")
    finally:
        await client.aclose()
    assert info.value.attempts == FAST.max_attempts
    assert info.value.timeout is False


# -- construction, pricing, header parsing -----------------------------------------------------


async def test_from_settings_and_sdk_retries_disabled(server: RunningServer) -> None:
    settings = SimpleNamespace(
        openai_api_key=SecretStr(DEFAULT_API_KEY), openai_base_url=server.base_url
    )
    client = AIClient.from_settings(settings, retry=FAST)
    try:
        assert client._client.max_retries == 0
        assert client.base_url.rstrip("/") == server.base_url
        assert (await client.moderate("hello")).flagged is False
    finally:
        await client.aclose()
    with pytest.raises(ValueError):
        AIClient(api_key="")


def test_pricing_lookup_and_overrides() -> None:
    pricing = Pricing()
    assert pricing.text_price("gpt-4o-mini-2024-07-18") == pricing.text["gpt-4o-mini"]
    assert pricing.text_price("gpt-5.4-mini-2026-03-17") == pricing.text["gpt-5.4-mini"]
    assert pricing.text_price("gpt-5.4-mini") != pricing.text["gpt-5.4"]
    assert pricing.text_price("mystery-model") == pricing.fallback_text
    # prompt_tokens includes cached tokens, billed at the cached rate
    cost = pricing.text_cost("gpt-4.1-mini", 1_000_000, 400_000, 100_000)
    assert cost == pytest.approx(0.6 * 0.40 + 0.4 * 0.10 + 0.1 * 1.60)

    custom = pricing.merged(
        {"text": {"gpt-4.1-mini": {"input": 1.0, "output": 2.0}}, "moderation_per_call": 0.001}
    )
    assert custom.text_price("gpt-4.1-mini") == TokenPrice(input=1.0, output=2.0)
    assert custom.text_price("gpt-4o") == pricing.text_price("gpt-4o")  # others kept
    assert custom.moderation_per_call == 0.001
    assert pricing.text_price("gpt-4.1-mini").input == 0.40  # original untouched

    image = pricing.merged(
        {"image": {"my-img": {"text_input": 1, "output": 10, "per_image": 0.02}}}
    )
    assert image.image_price("my-img") == ImagePrice(text_input=1, output=10, per_image=0.02)
    assert image.image_cost("my-img", images=3, has_usage=False) == pytest.approx(0.06)

    usage = Usage(operation="text", model="gpt-4.1-mini", input_tokens=1000, output_tokens=500)
    assert custom.estimate(usage) == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    with pytest.raises(ValueError):
        pricing.merged({"text": {"bad": {"input": -1, "output": 1}}})


def test_header_parsing() -> None:
    assert parse_reset_duration("20ms") == pytest.approx(0.02)
    assert parse_reset_duration("1s") == 1
    assert parse_reset_duration("6m0s") == 360
    assert parse_reset_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_reset_duration("soon") is None
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "7"}) == 7
    now = 1_790_000_000.0
    http_date = email.utils.formatdate(now + 10, usegmt=True)
    assert parse_retry_after({"retry-after": http_date}, now=now) == pytest.approx(10.0)
    assert parse_retry_after({}) is None
    info = RateLimitInfo.from_headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "12s",
            "x-ratelimit-remaining-tokens": "100",
            "x-ratelimit-reset-tokens": "1s",
        }
    )
    assert info is not None and info.limit_requests == 500
    assert info.exhausted_wait() == 12
    assert RateLimitInfo.from_headers({}) is None
