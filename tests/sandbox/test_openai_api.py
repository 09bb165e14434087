"""sandbox.openai_api: the OpenAI stand-in, exercised through the real `openai` client (and raw
HTTP where the client would refuse to send a malformed request)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from PIL import Image
from pydantic import BaseModel, Field

from sandbox.openai_api import (
    DEFAULT_API_KEY,
    MODERATION_CATEGORIES,
    ChatRequest,
    OpenAIState,
    RawContent,
    Refusal,
    RunningServer,
    format_reset,
    serve,
    strict_schema_problem,
    synthesize_instance,
    validate_instance,
)

KEY = DEFAULT_API_KEY
AUTH = {"Authorization": f"Bearer {KEY}"}
ERROR_KEYS = {"message", "type", "param", "code"}


class TweetDraft(BaseModel):
    text: str = Field(max_length=280)
    alt_text: str | None
    hashtags: list[str]
    mood: str = Field(json_schema_extra={"enum": ["calm", "excited"]})


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    async with serve(OpenAIState()) as srv:
        yield srv


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[AsyncOpenAI]:
    c = AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0, timeout=5.0)
    yield c
    await c.close()


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as c:
        yield c


def messages(user: str = "Write a tweet about SKIP LOCKED") -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": "You write short tweets."},
        {"role": "user", "content": user},
    ]


# -- chat --------------------------------------------------------------------------------------


async def test_structured_output_parses_into_the_model(
    client: AsyncOpenAI, server: RunningServer
) -> None:
    server.state.queue_chat("Postgres queues: SKIP LOCKED does the heavy lifting.")
    completion = await client.chat.completions.parse(
        model="gpt-4.1-mini", messages=messages(), response_format=TweetDraft
    )
    message = completion.choices[0].message
    assert message.refusal is None
    draft = message.parsed
    assert isinstance(draft, TweetDraft)
    assert draft.text == "Postgres queues: SKIP LOCKED does the heavy lifting."
    assert draft.mood == "calm"
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4.1-mini"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    (req,) = server.state.requests_for("chat")
    assert req.status == 200
    fmt = req.body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "TweetDraft"
    assert fmt["json_schema"]["strict"] is True
    assert "SKIP LOCKED" in req.prompt_text
    assert "authorization" not in req.headers


async def test_default_text_is_deterministic_and_schema_valid(
    client: AsyncOpenAI, server: RunningServer
) -> None:
    first = await client.chat.completions.parse(
        model="gpt-4.1-mini", messages=messages("topic A"), response_format=TweetDraft
    )
    again = await client.chat.completions.parse(
        model="gpt-4.1-mini", messages=messages("topic A"), response_format=TweetDraft
    )
    other = await client.chat.completions.parse(
        model="gpt-4.1-mini", messages=messages("topic B"), response_format=TweetDraft
    )
    a, a2, b = (c.choices[0].message.parsed for c in (first, again, other))
    assert a is not None and a2 is not None and b is not None
    assert a.text == a2.text
    assert a.text != b.text
    assert "topic A" in a.text
    assert len(a.text) <= 280


async def test_responder_sees_the_prompt(client: AsyncOpenAI, server: RunningServer) -> None:
    seen: list[ChatRequest] = []

    def responder(req: ChatRequest) -> str:
        seen.append(req)
        return f"echo: {req.user.upper()}"

    server.state.set_chat_responder(responder)
    completion = await client.chat.completions.parse(
        model="gpt-4o-mini", messages=messages("hello there"), response_format=TweetDraft
    )
    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    assert parsed.text == "echo: HELLO THERE"
    assert seen[0].system == "You write short tweets."
    assert seen[0].schema_name == "TweetDraft"


async def test_queued_json_and_raw_content_are_sent_as_is(
    client: AsyncOpenAI, server: RunningServer
) -> None:
    server.state.queue_chat(
        {"text": "exact", "alt_text": None, "hashtags": ["a", "b"], "mood": "excited"},
        RawContent("{not json"),
    )
    ok = await client.chat.completions.parse(
        model="gpt-4.1-mini", messages=messages(), response_format=TweetDraft
    )
    assert ok.choices[0].message.parsed == TweetDraft(
        text="exact", alt_text=None, hashtags=["a", "b"], mood="excited"
    )
    with pytest.raises(ValueError):  # pydantic's ValidationError: the SDK parses the content
        await client.chat.completions.parse(
            model="gpt-4.1-mini", messages=messages(), response_format=TweetDraft
        )


async def test_refusal(client: AsyncOpenAI, server: RunningServer) -> None:
    server.state.queue_chat("queued stays queued")
    server.state.refuse_next(1, "I can't write that.")
    refused = await client.chat.completions.parse(
        model="gpt-4.1-mini", messages=messages(), response_format=TweetDraft
    )
    message = refused.choices[0].message
    assert message.refusal == "I can't write that."
    assert message.content is None
    assert message.parsed is None
    assert refused.usage is not None and refused.usage.completion_tokens > 0
    after = await client.chat.completions.parse(
        model="gpt-4.1-mini", messages=messages(), response_format=TweetDraft
    )
    parsed = after.choices[0].message.parsed
    assert parsed is not None and parsed.text == "queued stays queued"
    server.state.queue_chat(Refusal())
    queued_refusal = await client.chat.completions.create(model="gpt-4.1-mini", messages=messages())
    assert queued_refusal.choices[0].message.refusal


async def test_plain_text_and_length_finish(client: AsyncOpenAI, server: RunningServer) -> None:
    server.state.queue_chat("just words", "x" * 400)
    plain = await client.chat.completions.create(model="gpt-4.1-mini", messages=messages())
    assert plain.choices[0].message.content == "just words"
    assert plain.choices[0].finish_reason == "stop"
    cut = await client.chat.completions.create(
        model="gpt-4.1-mini", messages=messages(), max_completion_tokens=10
    )
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 10


async def test_non_strict_schema_is_rejected_like_the_real_api(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    body = {
        "model": "gpt-4.1-mini",
        "messages": messages(),
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "Loose",
                "strict": True,
                "schema": {"type": "object", "properties": {"text": {"type": "string"}}},
            },
        },
    }
    r = await http.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 400
    err = r.json()["error"]
    assert set(err) == ERROR_KEYS
    assert err["type"] == "invalid_request_error"
    assert "additionalProperties" in err["message"]
    assert err["param"] == "response_format"


async def test_json_object_needs_the_word_json(http: httpx.AsyncClient) -> None:
    body = {
        "model": "gpt-4.1-mini",
        "messages": messages("no magic word here"),
        "response_format": {"type": "json_object"},
    }
    r = await http.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 400
    body["messages"] = messages("answer in JSON please")
    r = await http.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"].startswith("{")


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "gpt-4.1-mini"}, "messages", "missing_required_parameter"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model", "missing_required_parameter"),
        ({"model": "gpt-4.1-mini", "messages": []}, "messages", "empty_array"),
        ({"model": "gpt-4.1-mini", "messages": "hi"}, "messages", "invalid_type"),
        (
            {"model": "gpt-4.1-mini", "messages": [{"role": "robot", "content": "hi"}]},
            "messages[0].role",
            "invalid_value",
        ),
        (
            {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "hi"}], "n": 0},
            "n",
            "integer_below_min_value",
        ),
    ],
)
async def test_malformed_chat_requests_get_400(
    http: httpx.AsyncClient, server: RunningServer, body: dict[str, object], param: str, code: str
) -> None:
    r = await http.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == ERROR_KEYS
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", param, code)
    assert r.headers["x-request-id"].startswith("req_")
    assert server.state.requests_for("chat")[-1].status == 400


async def test_invalid_json_body_gets_400(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/v1/chat/completions",
        content=b"{nope",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert "could not parse the JSON body" in r.json()["error"]["message"]


async def test_missing_and_wrong_key_get_401(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    r = await http.post("/v1/moderations", json={"input": "hi"})
    assert r.status_code == 401
    err = r.json()["error"]
    assert set(err) == ERROR_KEYS
    assert "didn't provide an API key" in err["message"]

    wrong = "sk-wrong-key-0123456789"
    bad = AsyncOpenAI(api_key=wrong, base_url=server.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await bad.moderations.create(input="hi")
    await bad.close()
    assert info.value.code == "invalid_api_key"
    assert wrong not in str(info.value)  # masked, as OpenAI does
    assert all(not r.authorized for r in server.state.requests)


async def test_unknown_and_retired_models_get_404(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="gpt-nonexistent", messages=messages())
    assert info.value.code == "model_not_found"
    assert "does not exist" in info.value.message
    with pytest.raises(openai.NotFoundError) as retired:
        await client.images.generate(model="gpt-image-1", prompt="a cat")
    assert retired.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="gpt-image-1.5", messages=messages())


async def test_models_endpoint(client: AsyncOpenAI) -> None:
    page = await client.models.list()
    ids = {m.id for m in page.data}
    assert {"gpt-4.1-mini", "gpt-image-1.5", "omni-moderation-latest"} <= ids
    assert (await client.models.retrieve("gpt-4o-mini")).id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")


# -- images ------------------------------------------------------------------------------------


def decode(b64: str | None) -> Image.Image:
    assert b64 is not None
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


async def test_image_is_a_png_of_the_requested_size_and_deterministic(
    client: AsyncOpenAI, server: RunningServer
) -> None:
    resp = await client.images.generate(
        model="gpt-image-1.5", prompt="a lighthouse at dusk", size="1536x1024", n=2
    )
    assert resp.data is not None and len(resp.data) == 2
    imgs = [decode(d.b64_json) for d in resp.data]
    assert all(img.format == "PNG" and img.size == (1536, 1024) for img in imgs)
    assert resp.data[0].b64_json != resp.data[1].b64_json
    assert resp.size == "1536x1024"
    assert resp.output_format == "png"
    assert resp.usage is not None
    assert resp.usage.output_tokens > 0
    assert resp.usage.input_tokens_details.text_tokens == resp.usage.input_tokens
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens

    again = await client.images.generate(
        model="gpt-image-1.5", prompt="a lighthouse at dusk", size="1536x1024"
    )
    other = await client.images.generate(
        model="gpt-image-1.5", prompt="a lighthouse at noon", size="1536x1024"
    )
    assert again.data is not None and other.data is not None
    assert again.data[0].b64_json == resp.data[0].b64_json
    assert other.data[0].b64_json != resp.data[0].b64_json
    assert server.state.requests_for("images")[0].body["n"] == 2


async def test_image_sizes_are_validated_per_model(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.images.generate(model="gpt-image-1.5", prompt="x", size="512x512")
    assert info.value.param == "size"
    assert info.value.code == "invalid_value"
    flexible = await client.images.generate(model="gpt-image-2", prompt="x", size="1536x864")
    assert flexible.data is not None
    assert decode(flexible.data[0].b64_json).size == (1536, 864)
    for bad in ("1000x1000", "3840x1024", "512x512"):
        with pytest.raises(openai.BadRequestError):
            await client.images.generate(model="gpt-image-2", prompt="x", size=bad)
    with pytest.raises(openai.BadRequestError) as n_info:
        await client.images.generate(model="gpt-image-1.5", prompt="x", n=11)
    assert n_info.value.code == "integer_above_max_value"


async def test_image_prompt_required(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/images/generations", json={"model": "gpt-image-1.5"}, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "prompt"


# -- moderation --------------------------------------------------------------------------------


async def test_moderation_flags_configured_terms(
    client: AsyncOpenAI, server: RunningServer
) -> None:
    server.state.flag_terms({"kill": "violence", "idiots": "harassment"})
    flagged = await client.moderations.create(
        model="omni-moderation-latest", input="I will KILL this bug"
    )
    result = flagged.results[0]
    assert result.flagged is True
    assert result.categories.violence is True
    assert result.categories.harassment is False
    assert result.category_scores.violence > 0.5
    assert result.category_applied_input_types.violence == ["text"]
    dumped = result.categories.model_dump(by_alias=True)
    assert set(dumped) == set(MODERATION_CATEGORIES)

    clean = await client.moderations.create(input=["a skilled engineer", "you idiots"])
    assert [r.flagged for r in clean.results] == [False, True]
    assert clean.model == "omni-moderation-latest"
    assert clean.id.startswith("modr-")


# -- faults ------------------------------------------------------------------------------------


async def test_rate_limit_fault_sends_openai_headers(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    server.state.inject_fault("rate_limit", endpoint="chat", retry_after=2.5)
    body = {"model": "gpt-4.1-mini", "messages": messages()}
    r = await http.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "3"
    assert r.headers["retry-after-ms"] == "2500"
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-reset-requests"] == "2.5s"
    assert r.headers["x-ratelimit-limit-requests"].isdigit()
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("requests", "rate_limit_exceeded")
    # Only the chat endpoint was faulted, and only once.
    assert (await http.post("/v1/moderations", json={"input": "x"}, headers=AUTH)).is_success
    assert (await http.post("/v1/chat/completions", json=body, headers=AUTH)).is_success
    assert [r.fault for r in server.state.requests] == ["rate_limit", None, None]


async def test_server_faults(client: AsyncOpenAI, server: RunningServer) -> None:
    st = server.state
    st.inject_fault("overloaded")
    with pytest.raises(openai.InternalServerError) as overloaded:
        await client.moderations.create(input="x")
    assert overloaded.value.status_code == 503
    st.inject_fault("server_error")
    with pytest.raises(openai.InternalServerError) as err500:
        await client.moderations.create(input="x")
    assert err500.value.status_code == 500
    st.inject_fault("bad_gateway")
    with pytest.raises(openai.InternalServerError) as err502:
        await client.moderations.create(input="x")
    assert err502.value.status_code == 502
    assert "Bad Gateway" in str(err502.value.body)
    st.inject_fault("quota")
    with pytest.raises(openai.RateLimitError) as quota:
        await client.moderations.create(input="x")
    assert quota.value.code == "insufficient_quota"
    st.inject_fault("disconnect")
    with pytest.raises(openai.APIConnectionError):
        await client.moderations.create(input="x")
    assert [r.status for r in st.requests] == [503, 500, 502, 429, 0]
    assert st.pending_faults() == 0


async def test_timeout_fault_stalls_past_the_client_timeout(
    server: RunningServer,
) -> None:
    st = server.state
    st.hang_seconds = 0.6
    st.inject_fault("timeout")
    st.queue_chat("for the retry, not for the stalled request")
    impatient = AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await impatient.chat.completions.create(model="gpt-4.1-mini", messages=messages())
    assert time.monotonic() - started < 0.6
    (stalled,) = st.requests
    assert (stalled.fault, stalled.answered) == ("timeout", False)
    # Once the stall is over the stand-in sees the client has gone and answers nothing.
    await st.wait_for_requests(1, within=5)
    assert stalled.status == 0
    assert list(st.chat_queue) == ["for the retry, not for the stalled request"]
    await impatient.close()

    st.hang_seconds = 30.0  # a long stall is released at shutdown: the fixture does not wait
    st.inject_fault("timeout")
    again = AsyncOpenAI(api_key=KEY, base_url=server.base_url, max_retries=0, timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        await again.moderations.create(input="x")
    await again.close()


async def test_latency_is_added(client: AsyncOpenAI, server: RunningServer) -> None:
    server.state.set_latency(moderations=0.3)
    started = time.monotonic()
    await client.moderations.create(input="x")
    assert time.monotonic() - started >= 0.3


async def test_requests_per_minute_limit(client: AsyncOpenAI, server: RunningServer) -> None:
    server.state.requests_per_minute = 2
    await client.moderations.create(input="1")
    await client.moderations.create(input="2")
    with pytest.raises(openai.RateLimitError) as info:
        await client.moderations.create(input="3")
    headers = info.value.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")


async def test_wait_for_requests(client: AsyncOpenAI, server: RunningServer) -> None:
    server.state.set_latency(moderations=0.05)
    task = asyncio.create_task(client.moderations.create(input="later"))
    recorded = await server.state.wait_for_requests(1, endpoint="moderations", within=5)
    assert recorded[0].prompt_text == "later"
    await task
    with pytest.raises(TimeoutError):
        await server.state.wait_for_requests(5, endpoint="images", within=0.05)


# -- control endpoints -------------------------------------------------------------------------


async def test_control_endpoints_mirror_the_state(
    http: httpx.AsyncClient, client: AsyncOpenAI, server: RunningServer
) -> None:
    r = await http.post(
        "/_sandbox/chat/queue",
        json={"items": ["from control", {"refusal": "nope"}, {"content": {"a": 1}}]},
    )
    assert r.json()["chat_queue"] == 3
    await http.post("/_sandbox/moderation/flagged-terms", json={"terms": ["spam"]})
    await http.post("/_sandbox/faults", json={"kind": "server_error", "endpoint": "moderations"})
    await http.post("/_sandbox/latency", json={"chat": 0.0, "images": 0.0})
    state = (await http.get("/_sandbox/state")).json()
    assert state["faults"] == {"moderations": ["server_error"]}
    assert state["flagged_terms"] == {"spam": "harassment"}

    first = await client.chat.completions.create(model="gpt-4.1-mini", messages=messages())
    assert first.choices[0].message.content == "from control"
    second = await client.chat.completions.create(model="gpt-4.1-mini", messages=messages())
    assert second.choices[0].message.refusal == "nope"
    with pytest.raises(openai.InternalServerError):
        await client.moderations.create(input="spam")
    assert (await client.moderations.create(input="spam")).results[0].flagged

    logged = (await http.get("/_sandbox/requests", params={"endpoint": "chat"})).json()
    assert [r["status"] for r in logged["requests"]] == [200, 200]
    assert (await http.post("/_sandbox/faults", json={"kind": "bogus"})).status_code == 400
    server.state.queue_chat("left over")
    await http.post("/_sandbox/reset")
    assert server.state.requests == []
    assert not server.state.chat_queue
    assert server.state.flagged_terms == {}


# -- schema helpers ----------------------------------------------------------------------------


def test_synthesized_instances_validate() -> None:
    from openai.lib._pydantic import to_strict_json_schema

    class Nested(BaseModel):
        label: str
        score: float = Field(ge=0, le=1)

    class Complex(BaseModel):
        tweet: str = Field(max_length=20)
        extras: list[Nested] = Field(min_length=2)
        kind: str = Field(json_schema_extra={"const": "k"})
        maybe: int | None

    schema = to_strict_json_schema(Complex)
    assert strict_schema_problem(schema) is None
    instance = synthesize_instance(schema, "a long text that will be cut")
    assert validate_instance(instance, schema) == []
    parsed = Complex.model_validate(instance)
    assert parsed.tweet == "a long text that wil"
    assert len(parsed.extras) == 2
    assert validate_instance({"tweet": 3}, schema)


def test_format_reset() -> None:
    assert format_reset(0.02) == "20ms"
    assert format_reset(1) == "1s"
    assert format_reset(360) == "6m0s"
    assert format_reset(3723.5) == "1h2m3.5s"


def test_cli_serves() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.openai_api", "--port", str(port), "--flag", "boom"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        assert "[SANDBOX]" in proc.stdout.readline()
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/v1/moderations",
                    json={"input": "boom"},
                    headers=AUTH,
                    timeout=2,
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert r.status_code == 200
        assert r.json()["results"][0]["flagged"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
