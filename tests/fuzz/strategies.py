"""Hypothesis strategies shared by the fuzz tests: hostile text and arbitrary JSON.

Text is always valid UTF-8 (no lone surrogates: they cannot be encoded, so no client could send
them). NUL is the one code point Postgres `text` cannot hold; `text_with_nul` produces it on
purpose so the tests can check the refusal is clean.
"""

from __future__ import annotations

import datetime
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

import annotated_types
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# Any encodable code point except NUL.
CHARS = st.characters(codec="utf-8", exclude_characters="\x00")

# Pieces that break naive text handling, from X's own counting rules and Unicode's corners.
EDGE_PIECES: tuple[str, ...] = (
    # emoji: ZWJ family, skin tone, flag, keycap, tag flag, text vs emoji presentation
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f44d\U0001f3fd",
    "\U0001f3fb",
    "\U0001f1eb\U0001f1f7",
    "\U0001f1eb",
    "1\ufe0f\u20e3",
    "#\u20e3",
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "\u2764\ufe0f",
    "\u2764\ufe0e",
    "\u00a9",
    "\U0001f426\u200d\U0001f525",
    "\u200d",
    "\u200d\u200d",
    # bidi and invisible
    "\u200f",
    "\u200e",
    "\u202e",
    "\u2066",
    "\u200b",
    "\u2060",
    "\ufeff",
    "\ufffe",
    "\uffff",
    # combining marks, NFC/NFD pairs
    "e\u0301",
    "\u00e9",
    "\u0301",
    "a" + "\u0300" * 40,
    "\u1100\u1161\u11a8",
    # CJK and other wide scripts
    "\u6f22\u5b57",
    "\u3042",
    "\ud55c",
    "\U00020000",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    # control characters and whitespace of every kind
    "\x01",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\t",
    "\n",
    "\r\n",
    "\x0b",
    "\x1c",
    " ",
    "\u00a0",
    "\u2007",
    "\u202f",
    "\u2003",
    "\u3000",
    "\u2028",
    # URLs and things that look like them
    "https://example.com/path?q=1",
    "http://x",
    "example.com",
    "www.example.org/a",
    "foo.jp",
    "a.co",
    "https://\u4f8b\u3048.jp",
    "@user",
    "#tag",
    "$TICK",
    # SQL and markup
    "'; drop table public.jobs; --",
    "%s %(x)s {0}",
    "<script>alert(1)</script>",
    "\\",
    '"',
)

WHITESPACE = (" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000", "\x85", "\u2028")

fragment = st.one_of(st.text(CHARS, max_size=12), st.sampled_from(EDGE_PIECES))
short_text = st.lists(fragment, max_size=24).map("".join)
whitespace_only = st.lists(st.sampled_from(WHITESPACE), min_size=1, max_size=30).map("".join)
# Up to ~100k characters, built by repetition (generating them one by one would be slow).
huge_text = st.builds(
    lambda unit, n: (unit * n)[:100_000],
    st.one_of(st.text(CHARS, min_size=1, max_size=6), st.sampled_from(EDGE_PIECES)),
    st.integers(min_value=50, max_value=100_000),
)
# Around X's 280 limit, where off-by-one counting shows.
near_limit = st.builds(
    lambda unit, n, tail: unit * n + tail,
    st.sampled_from(["a", "\u6f22", "\U0001f600", "e\u0301", "https://example.com ", "\u200d"]),
    st.integers(min_value=100, max_value=300),
    short_text,
)
hostile_text = st.one_of(
    short_text,
    short_text,
    whitespace_only,
    near_limit,
    huge_text,
)
text_with_nul = st.builds(lambda a, b: a + "\x00" + b, short_text, short_text)

# JSON ------------------------------------------------------------------------------------------
json_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 1.0, 7.0, -0.0, 1e-9, 1e300, 3650.0, 1e3]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    json_numbers,
    st.text(CHARS, max_size=30),
    st.sampled_from(EDGE_PIECES),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(CHARS, max_size=12), children, max_size=6),
    ),
    max_leaves=25,
)


@dataclass(frozen=True)
class Deep:
    """A value nested `depth` levels deep, serialised without recursion (see `to_json`)."""

    depth: int
    as_object: bool

    def text(self) -> str:
        if self.as_object:
            return '{"a": ' * self.depth + "1" + "}" * self.depth
        return "[" * self.depth + "1" + "]" * self.depth


def to_json(value: Any) -> str:
    """json.dumps that can also write `Deep` values (json.dumps itself would recurse)."""
    if isinstance(value, Deep):
        return value.text()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


# Junk for any field: wrong types, nesting Python cannot load, huge arrays and strings.
junk = st.one_of(
    json_scalars,
    json_values,
    st.builds(Deep, st.integers(min_value=300, max_value=4000), st.booleans()),
    st.builds(lambda x, n: [x] * n, json_scalars, st.integers(1000, 20_000)),
    st.builds(
        lambda s, n: (s * n)[:100_000], st.sampled_from(EDGE_PIECES), st.integers(100, 30_000)
    ),
)

# Field strategies, from pydantic models ---------------------------------------------------------
CRON_TOKENS = ["*", "0", "5", "*/5", "*/0", "60", "24", "32", "13", "1-5", "9,13,18", "a", "L",
               "?", "MON", "jan", "-1", "1/2", "@daily", "**", "0-59/15", "\u0669"]  # fmt: skip
cron_text = st.one_of(
    st.sampled_from(
        [
            "0 9 * * *",
            "*/5 * * * *",
            "0 9,13,18 * * 1-5",
            "* * * * *",
            "30 2 1 * *",
            " 0 12 * * 0 ",
            "0 0 29 2 *",
        ]
    ),
    st.lists(st.sampled_from(CRON_TOKENS), min_size=4, max_size=6).map(" ".join),
    st.sampled_from(["30 seconds", "1 seconds", "0 seconds", "61 seconds", "@hourly", "", " "]),
    st.lists(st.sampled_from(CRON_TOKENS), min_size=5, max_size=5).map("\t".join),
)
urls = st.one_of(
    st.sampled_from(["http://example.com/hook", "https://h.example/x?y=1", "http://", "https://",
                     "ftp://x", "http://[::1]:99999", "http://exa mple.com", "https://\u4f8b.jp"]),
    st.text(CHARS, max_size=20).map(lambda s: "https://" + s),
)  # fmt: skip
digit_ids = st.one_of(
    st.from_regex(r"\A[0-9]{1,30}\Z"),
    st.sampled_from(["0", "-1", "1e5", " 1", "1 ", "\u0661\u0662", "9" * 25, "9" * 26, ""]),
)


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge):
            lo = m.ge
        if isinstance(m, annotated_types.Le):
            hi = m.le
    return lo, hi  # type: ignore[return-value]


def typed_value(annotation: Any, name: str, info: FieldInfo) -> st.SearchStrategy[Any]:
    """Plausible values for one model field: right type, boundaries, near misses."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(typed_value(a, name, info) for a in args))
    if annotation is type(None):
        return st.none()
    if origin is typing.Literal:
        return st.one_of(st.sampled_from(args), st.sampled_from([str(a).upper() for a in args]))
    if annotation is bool:
        return st.one_of(st.booleans(), st.sampled_from(["true", 1, 0]))
    if annotation in (int, float):
        lo, hi = _bounds(info)
        edges = [v for b in (lo, hi) if b is not None for v in (b, b - 1, b + 1, b + 0.5, b * 1.0)]
        numbers = st.one_of(
            st.integers(min_value=-(10**12), max_value=10**12),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from([*edges, 0, -1, 1e300, 2**63, 2**64, 7.0, 1e3, "5", "1e2"]),
        )
        if lo is not None and hi is not None:
            numbers = st.one_of(numbers, st.integers(int(lo), int(hi)))
        return numbers
    if annotation is str:
        if name.endswith("_cron"):
            return cron_text
        if name.endswith("_id"):
            return digit_ids
        return st.one_of(st.text(CHARS, max_size=20), st.sampled_from(EDGE_PIECES))
    if origin is list:
        return st.lists(st.one_of(st.text(CHARS, max_size=10), json_scalars), max_size=30)
    if "Url" in getattr(annotation, "__name__", ""):
        return urls
    if annotation is datetime.date:
        return st.one_of(
            st.dates().map(str),
            st.sampled_from(["2026-04-20", "2026-02-30", "yesterday", "20260420", "", "2026-4-2"]),
        )
    if origin is dict:
        return st.dictionaries(
            st.one_of(
                st.sampled_from(["gpt-5.4-mini", "gpt-image-1.5"]), st.text(CHARS, max_size=8)
            ),
            st.one_of(typed_value(args[1], name, info), json_scalars),
            max_size=3,
        )
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_documents(annotation)  # a nested document (configs.pricing.x, .openai)
    raise AssertionError(f"no strategy for {name}: {annotation!r}")


def model_documents(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """JSON documents aimed at `model`: about three fields set to plausible values, nulls or
    junk, sometimes an unknown field, sometimes not an object at all."""
    fields = model.model_fields

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        if draw(st.integers(0, 9)) == 9:  # (hypothesis favours small draws: test the large one)
            return draw(st.one_of(json_scalars, st.lists(json_scalars, max_size=3)))
        doc: dict[str, Any] = {}
        present = max(10, 300 // max(len(fields), 1))
        for name, info in fields.items():
            choice = draw(st.integers(0, 99))
            if choice >= present:
                continue  # absent: the default applies
            if choice < present * 0.75:
                doc[name] = draw(typed_value(info.annotation, name, info))
            elif choice < present * 0.85:
                doc[name] = None
            else:
                doc[name] = draw(junk)
        if draw(st.integers(0, 5)) == 5:
            doc[draw(st.text(CHARS, max_size=15))] = draw(junk)
        return doc

    return build()
