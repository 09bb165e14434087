"""Subscription parameters: a `postgres_changes` binding as a channel join carries it, parsed and
refused as Realtime refuses it, ported from `Extensions.PostgresCdcRls.Subscriptions`
(supabase/realtime, `lib/extensions/postgres_cdc_rls/subscriptions.ex`): `parse_filters`
(`col=op.value`, `not.`, commas for AND), `parse_binding`, and the binding's integer id
(`binding_id`, a hash of its parameters as `:erlang.phash2(params)` is).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FILTER_OPS = (
    "eq",
    "neq",
    "lt",
    "lte",
    "gt",
    "gte",
    "in",
    "like",
    "ilike",
    "is",
    "match",
    "imatch",
    "isdistinct",
)


class SubscriptionError(Exception):
    """A binding the server refuses; the message is what Realtime would push."""


@dataclass(frozen=True)
class PgFilter:
    column: str
    op: str
    value: str
    negate: bool


@dataclass
class PgBinding:
    """One `postgres_changes` entry of a join, with the id the server assigned to it."""

    id: int
    params: dict[str, Any]
    event: str
    schema: str
    table: str
    filters: tuple[PgFilter, ...]
    select: tuple[str, ...] | None
    relids: frozenset[int] = frozenset()


def binding_id(params: Mapping[str, Any]) -> int:
    """A stable non-zero integer per distinct binding (Realtime uses `:erlang.phash2(params)`).

    Non-zero matters: the Python client ignores events when its binding id is falsy.
    """
    digest = zlib.crc32(json.dumps(params, sort_keys=True, separators=(",", ":")).encode())
    return (digest & 0x7FFFFFF) or 1


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    prev = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\" and i + 1 < len(text):
                current.append(text[i : i + 2])
                i += 2
                continue
            if ch == '"':
                quoted = False
            current.append(ch)
        elif ch == '"' and prev in (".", "(", ","):
            quoted = True
            current.append(ch)
        elif ch == "(":
            depth += 1
            current.append(ch)
        elif ch == ")":
            depth = max(0, depth - 1)
            current.append(ch)
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            ch = ""
        else:
            current.append(ch)
        prev = ch
        i += 1
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return value


def parse_filters(text: str) -> tuple[PgFilter, ...]:
    """Parse `col=op.value[,col=op.value...]` as Realtime does; raise SubscriptionError."""
    if not text.strip():
        return ()
    out: list[PgFilter] = []
    for segment in _split_top_level(text.strip()):
        seg = segment.strip()
        if not seg:
            raise SubscriptionError(
                "Error parsing `filter` params: filter must not contain empty segments "
                "(check for extra commas)"
            )
        if "=" not in seg:
            raise SubscriptionError(f'Error parsing `filter` params: ["{seg}"]')
        col, rest = seg.split("=", 1)
        negate = rest.startswith("not.")
        if negate:
            rest = rest[4:]
        if "." not in rest:
            raise SubscriptionError(f'Error parsing `filter` params: ["{rest}"]')
        op, value = rest.split(".", 1)
        if op not in FILTER_OPS:
            raise SubscriptionError(f'Error parsing `filter` params: ["{op}", "{value}"]')
        if op == "in":
            if not (len(value) >= 2 and value[0] == "(" and value[-1] == ")"):
                raise SubscriptionError(
                    "Error parsing `filter` params: `in` filter value must be wrapped by "
                    "parentheses"
                )
            value = "{" + value[1:-1] + "}"
        else:
            value = _unquote(value)
        out.append(PgFilter(col, op, value, negate))
    return tuple(out)


def parse_binding(params: Mapping[str, Any]) -> PgBinding:
    """Validate one `config.postgres_changes` entry (shape errors raise SubscriptionError)."""
    raw_event = params.get("event")
    event = "*"
    if isinstance(raw_event, str) and raw_event.upper() in ("INSERT", "UPDATE", "DELETE"):
        event = raw_event.upper()
    schema = params.get("schema")
    table = params.get("table")
    flt = params.get("filter")
    has_schema = isinstance(schema, str)
    has_table = isinstance(table, str)
    if has_schema and has_table and isinstance(flt, str):
        filters = parse_filters(flt)
    elif has_schema and has_table and "filter" not in params:
        filters = ()
    elif has_schema and "table" not in params and "filter" not in params:
        table, filters = "*", ()
    elif has_table and "schema" not in params and "filter" not in params:
        schema, filters = "public", ()
    else:
        raise SubscriptionError(
            "No subscription params provided. Please provide at least a `schema` or `table` "
            f"to subscribe to: {json.dumps(dict(params))}"
        )
    select: tuple[str, ...] | None = None
    raw_select = params.get("select")
    if isinstance(raw_select, str):
        raise SubscriptionError(
            "Error parsing `select` params: expected a list of column name strings, e.g. "
            'select: ["col1", "col2"]'
        )
    if isinstance(raw_select, list):
        cols = tuple(c for c in raw_select if isinstance(c, str))
        select = cols or None
    if select is not None and (schema == "*" or table == "*"):
        raise SubscriptionError(
            "Column selection is not supported for wildcard subscriptions. Provide an explicit "
            "schema and table name."
        )
    return PgBinding(
        id=binding_id(params),
        params=dict(params),
        event=event,
        schema=str(schema),
        table=str(table),
        filters=filters,
        select=select,
    )


def _describe(b: PgBinding) -> str:
    filters = [[f.column, f.op, f.value, f.negate] for f in b.filters]
    select = list(b.select) if b.select is not None else None
    return (
        f"[event: {json.dumps(b.event)}, schema: {json.dumps(b.schema)}, "
        f"table: {json.dumps(b.table)}, filters: {json.dumps(filters)}, "
        f"select: {json.dumps(select)}]"
    )
