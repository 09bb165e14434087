"""JSON schema for structured output: strict-mode checks (what `response_format: json_schema`
with `strict: true` refuses), a small validator, and an instance synthesizer that fills a schema
around a scripted text, so `client.chat.completions.parse()` gets what it asked for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from sandbox.openai_api.params import _type_name

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
