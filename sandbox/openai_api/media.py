"""`POST /v1/images/generations` (GPT image models, `b64_json` data and gpt-image `usage`) and
`POST /v1/moderations` (the `omni-moderation-latest` result shape, flagged by scripted terms).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import secrets
import time
from typing import Any

from aiohttp import web

from sandbox.openai_api.catalog import (
    _IMAGE_CAPABLE_CATEGORIES,
    MAX_PROMPT_CHARS,
    MODERATION_CATEGORIES,
)
from sandbox.openai_api.errors import ApiError
from sandbox.openai_api.handlers import HandlerBase
from sandbox.openai_api.images import _OUTPUT_TOKENS_1024, _check_size, render_image
from sandbox.openai_api.params import (
    _int_param,
    _invalid_type,
    _invalid_value,
    _missing,
    _moderation_texts,
    _require_model,
    estimate_tokens,
)


class MediaHandlers(HandlerBase):
    """The image generation and moderation endpoints."""

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
