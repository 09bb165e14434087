"""Filter evaluation on typed values: `filter_matches` decides whether a change's record passes a
binding's filters the way `realtime.check_equality_op` does, casting both sides to the column's
type (booleans, numbers, arrays as Postgres writes them, `like`/`ilike` and regex matches).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.realtime.subscriptions import PgFilter

_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


def _coerce(sample: Any, text: str) -> Any:
    """The filter literal `text` as the same kind of value as the column's `sample`."""
    if isinstance(sample, bool):
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(text)
    if isinstance(sample, int | float | Decimal):
        return Decimal(text.strip())
    if isinstance(sample, dict | list):
        return json.loads(text)
    return text


def _parse_pg_array(text: str) -> list[str]:
    inner = text.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1]
    items: list[str] = []
    buf: list[str] = []
    quoted = False
    i = 0
    while i < len(inner):
        ch = inner[i]
        if quoted:
            if ch == "\\" and i + 1 < len(inner):
                buf.append(inner[i + 1])
                i += 2
                continue
            if ch == '"':
                quoted = False
            else:
                buf.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == ",":
            items.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    if buf or items:
        items.append("".join(buf).strip())
    return items


def _like_to_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


def _as_number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    return value


def filter_matches(flt: PgFilter, row: Mapping[str, Any]) -> bool:
    """Whether `row` passes `flt`; a missing column never passes (as in Realtime)."""
    if flt.column not in row:
        return False
    value = row[flt.column]
    try:
        if flt.op == "is":
            if flt.value == "null":
                res = value is None
            elif flt.value in ("true", "false"):
                res = value is (flt.value == "true")
            else:  # unknown
                res = value is None
            return res != flt.negate
        if flt.op == "isdistinct":
            other = None if value is None else _coerce(value, flt.value)
            res = _as_number(value) != other
            return res != flt.negate
        if value is None:
            return False  # SQL NULL compares to NULL: never true, negated or not
        if flt.op == "in":
            candidates = [_coerce(value, v) for v in _parse_pg_array(flt.value)]
            res = _as_number(value) in candidates
        elif flt.op in ("like", "ilike"):
            like_flags = re.IGNORECASE | re.DOTALL if flt.op == "ilike" else re.DOTALL
            res = re.fullmatch(_like_to_regex(flt.value), str(value), like_flags) is not None
        elif flt.op in ("match", "imatch"):
            res = (
                re.search(flt.value, str(value), re.IGNORECASE if flt.op == "imatch" else 0)
                is not None
            )
        else:
            left = _as_number(value)
            right = _coerce(value, flt.value)
            if flt.op == "eq":
                res = left == right
            elif flt.op == "neq":
                res = left != right
            elif flt.op == "lt":
                res = left < right
            elif flt.op == "lte":
                res = left <= right
            elif flt.op == "gt":
                res = left > right
            else:
                res = left >= right
    except (ValueError, TypeError, InvalidOperation, re.error):
        return False
    return res != flt.negate
