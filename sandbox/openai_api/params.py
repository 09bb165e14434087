"""Reading request bodies as the OpenAI API does: the `invalid_type` / missing / `invalid_value`
messages in its wording, integer parameters, model checks (unknown and retired models, with the
deprecations page it points to), the text messages carry and a token estimate for `usage`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sandbox.openai_api.errors import ApiError

if TYPE_CHECKING:
    from sandbox.openai_api.state import OpenAIState


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
