"""Fuzz the database door's count: on random texts built from the pieces counters get wrong,
`tweet_length_at_least` is never above X's count (the worker's), so it never refuses a text X
accepts. The pieces are URL parts, emoji parts, CJK, whitespace and punctuation, so the
examples land on links, sequences and the places where the two counts could part."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import EDGE_PIECES
from worker.content.tweet_text import weighted_length

pytestmark = pytest.mark.timeout(300)

URL_PIECES = (
    "https://", "http://", "HTTP://", "www.", ".", ".", "/", "//", "?", "?q=1", ":", ":8080",
    "#", "@", "-", "_", "(", ")", "[", "'", '"', ",", "!", "com", "jp", "co", "uk", "de", "py",
    "museum", "photography", "xn--ls8h", "みんな", "中国", "コム", "example", "t.co/", "a" * 40,
    "b" * 63, "x", "1", "127.0.0.1", "localhost", "ạ", "é", "путь", "\u2013",
)  # fmt: skip
OTHER_PIECES = (
    " ", " ", "\n", "\u3000", "\u00a0", "日本語", "테스트", "\U0001f600", "\u200d", "\ufe0f",
    "\ufe0e", "\u20e3", "\U0001f3fd", "\U0001f1ef", "\U0001f1f5", "\U0001f3f4", "\U000e0067",
    "\U000e007f", "\u2764", "\u00a9", "\U0001f426", "\U0001f525", "\u2194", "\u2640",
)  # fmt: skip
pieces = st.sampled_from(URL_PIECES + OTHER_PIECES + EDGE_PIECES)
texts = st.lists(pieces, min_size=1, max_size=40).map("".join)
STATS: Counter[str] = Counter()


@FUZZ
@given(text=texts)
@example(text="https://example.com/path日本語です")
@example(text="日本語https://日本語.みんな/a")
@example(text="\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466#\ufe0f\u20e3")
def _fuzz_bound(fuzz_conn: psycopg.Connection, text: str) -> None:
    text = text.replace("\x00", "")
    row = fuzz_conn.execute("select public.tweet_length_at_least(%s)", (text,)).fetchone()
    assert row is not None
    bound, exact = int(row[0]), weighted_length(text)
    assert bound <= exact, f"the door counts {bound}, X {exact}: {text!r}"
    STATS["equal" if bound == exact else "below"] += 1


def test_fuzz_door_count_never_above_x(fuzz_conn: psycopg.Connection) -> None:
    STATS.clear()
    _fuzz_bound(fuzz_conn)
    print(dict(STATS))
    assert STATS["equal"] >= 50 and STATS["below"] >= 50, STATS  # both sides were reached
