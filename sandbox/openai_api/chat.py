"""`POST /v1/chat/completions`: messages and parameters checked as the API checks them, plain
text, `json_object` and `json_schema` response formats (strict schemas enforced, output
synthesized to fit), scripted refusals and raw content, and `usage` token counts.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from aiohttp import web

from sandbox.openai_api.catalog import MESSAGE_ROLES
from sandbox.openai_api.errors import ApiError
from sandbox.openai_api.handlers import HandlerBase
from sandbox.openai_api.params import (
    _content_text,
    _int_param,
    _invalid_type,
    _invalid_value,
    _missing,
    _require_model,
    estimate_tokens,
)
from sandbox.openai_api.schemas import (
    _SCHEMA_NAME_RE,
    default_chat_text,
    strict_schema_problem,
    synthesize_instance,
)
from sandbox.openai_api.state import ChatRequest, ChatScript, RawContent, Refusal


class ChatHandlers(HandlerBase):
    """The chat completions endpoint."""

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
