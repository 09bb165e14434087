"""`matches_sent`: the text chirpbase sent vs. the post as X returns it (a table, then a property
against the X stand-in's own rewriting)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.x_api.rewriting import store_text
from worker.clients.x import UrlEntity, XTweet
from worker.clients.x.rewriting import matches_sent, unescape

TCO_A = "https://t.co/AAAAAAAAAA"
TCO_B = "https://t.co/BBBBBBBBBB"
TCO_M = "https://t.co/MMMMMMMMMM"
ID = "1800000000000000042"


def link(url: str, expanded: str, display: str | None = None, media_key: str | None = None):
    shown = display if display is not None else expanded.split("://", 1)[-1]
    return UrlEntity(url=url, expanded_url=expanded, display_url=shown, media_key=media_key)


def post(text: str, *urls: UrlEntity, media: tuple[str, ...] = ()) -> XTweet:
    return XTweet(id=ID, text=text, urls=tuple(urls), media_keys=media)


PHOTO = f"https://x.com/chirpbase_bot/status/{ID}/photo/1"

CASES = [
    # (what chirpbase sent, media sent, the post as X returns it, same post?)
    ("plain words", 0, post("plain words"), True),
    ("plain words", 0, post("plain word"), False),
    ("hello", 0, post("hello world"), False),  # a prefix is not the post
    ("Q&A <live> 3>2", 0, post("Q&amp;A &lt;live&gt; 3&gt;2"), True),
    ("I typed &amp; literally", 0, post("I typed &amp;amp; literally"), True),
    (
        "see chirpbase.dev today",
        0,
        post(f"see {TCO_A} today", link(TCO_A, "http://chirpbase.dev")),
        True,
    ),
    (
        "see https://chirpbase.dev/docs?a=1, ok",
        0,
        post(f"see {TCO_A}, ok", link(TCO_A, "https://chirpbase.dev/docs?a=1")),
        True,
    ),
    (
        "see chirpbase.dev today",
        0,
        post(f"see {TCO_A} today", link(TCO_A, "http://chirpbase.org")),
        False,
    ),  # another link
    (
        "see chirpbase.dev today",
        0,
        post(f"see {TCO_A} today", link(TCO_A, "https://chirpbase.dev")),
        False,
    ),  # sent with https:// by someone: the same display_url, not the same post
    (
        "two: a.io and https://b.dev/x",
        0,
        post(
            f"two: {TCO_A} and {TCO_B}", link(TCO_A, "http://a.io"), link(TCO_B, "https://b.dev/x")
        ),
        True,
    ),
    (
        "two: a.io and https://b.dev/x",
        0,  # the same links in the other order
        post(
            f"two: {TCO_B} and {TCO_A}", link(TCO_A, "http://a.io"), link(TCO_B, "https://b.dev/x")
        ),
        False,
    ),
    (
        "a long link https://example.com/" + "x" * 40,
        0,
        post(
            f"a long link {TCO_A}",
            link(TCO_A, "https://example.com/" + "x" * 40, "example.com/xxxxxxxxxxxxx\u2026"),
        ),
        True,
    ),
    (
        "Our new logo",
        1,
        post(f"Our new logo {TCO_M}", link(TCO_M, PHOTO, "pic.x.com/M", "3_9")),
        True,
    ),
    (
        "Our new logo",
        1,  # X's media link without media_key: recognised by its /photo/ target
        post(f"Our new logo {TCO_M}", link(TCO_M, PHOTO, "pic.x.com/M"), media=("3_9",)),
        True,
    ),
    (
        "Our new logo",
        0,
        post(f"Our new logo {TCO_M}", link(TCO_M, PHOTO, "pic.x.com/M", "3_9"), media=("3_9",)),
        False,
    ),  # it has media, we sent none
    ("Our new logo", 1, post("Our new logo"), False),  # we sent an image, it has none
    (
        "logo at chirpbase.dev",
        1,
        post(
            f"logo at {TCO_A} {TCO_M}",
            link(TCO_A, "http://chirpbase.dev"),
            link(TCO_M, PHOTO, "pic.x.com/M", "3_9"),
            media=("3_9",),
        ),
        True,
    ),
    ("", 1, post(TCO_M, link(TCO_M, PHOTO, "pic.x.com/M", "3_9"), media=("3_9",)), True),
    ("caf\u0065\u0301 time", 0, post("caf\u00e9 time"), True),  # NFC on both sides
    ("  spaced\n\nout  ", 0, post("spaced out"), True),
    (
        "already https://t.co/zzz",
        0,
        post(f"already {TCO_A}", link(TCO_A, "https://t.co/zzz")),
        True,
    ),  # t.co wrapped again
    (
        "dots... and (parens) [ok]? $5 + 2*3",
        0,
        post("dots... and (parens) [ok]? $5 + 2*3"),
        True,
    ),  # regex characters are literal
]


@pytest.mark.parametrize(("sent", "media", "tweet", "same"), CASES)
def test_matches_sent(sent: str, media: int, tweet: XTweet, same: bool) -> None:
    if tweet.urls and any(u.media_key for u in tweet.urls) and not tweet.media_keys:
        tweet = XTweet(id=tweet.id, text=tweet.text, urls=tweet.urls, media_keys=("3_9",))
    assert matches_sent(sent, tweet, media_count=media) is same


def test_unescape_undoes_only_what_x_escapes() -> None:
    assert unescape("&amp;lt; &lt; &gt; &amp; &quot; &copy;") == "&lt; < > & &quot; &copy;"


_WORDS = st.sampled_from(
    [
        "hello",
        "Postgres",
        "café",
        "日本",
        "🙂",
        "&",
        "<",
        ">",
        "a&b",
        "Q&A",
        "x>y",
        "100%",
        "(ok)",
        "#tag",
        "@someone",
        "...",
        "-",
        "naïve",
    ]
)
_LINKS = st.sampled_from(
    [
        "chirpbase.dev",
        "https://chirpbase.dev",
        "http://example.com/a?b=1",
        "example.org/path",
        "https://x.com/i/status/1",
        "www.example.co.uk",
        "t.co/abc",
        "https://t.co/abcdefgh",
    ]
)
_SPACE = st.sampled_from([" ", "  ", "\n", " \n "])


@st.composite
def sent_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(_WORDS, _LINKS), min_size=1, max_size=12))
    out = parts[0]
    for part in parts[1:]:
        out += draw(_SPACE) + part
    return out


def _as_returned(sent: str, media: int) -> XTweet:
    """What the X stand-in stores for ``sent``, as the worker parses it."""
    keys = [f"3_{i}" for i in range(media)]
    stored = store_text(sent, tweet_id=ID, username="chirpbase_bot", media_keys=keys)
    urls = tuple(
        UrlEntity(u["url"], u["expanded_url"], u["display_url"], u.get("media_key"))
        for u in stored.urls
    )
    return XTweet(id=ID, text=stored.text, urls=urls, media_keys=tuple(keys))


@settings(max_examples=300, deadline=None)
@given(sent=sent_texts(), media=st.integers(0, 1), other=sent_texts())
def test_every_post_the_stand_in_rewrites_is_recognised_and_no_other(
    sent: str, media: int, other: str
) -> None:
    returned = _as_returned(sent, media)
    assert matches_sent(sent, returned, media_count=media)
    assert not matches_sent(sent, returned, media_count=1 - media)
    if " ".join(unicodedata.normalize("NFC", other).split()) != " ".join(
        unicodedata.normalize("NFC", sent).split()
    ):
        assert not matches_sent(other, returned, media_count=media)


@pytest.mark.parametrize(
    ("on_x", "on_x_reply_to", "sent", "reply_to", "ours"),
    [
        # X puts the answered author's handle (and the thread's) in front of a reply.
        ("@alice_dev Measure first.", "111", "Measure first.", "111", True),
        ("@alice_dev @bob Measure first.", "111", "Measure first.", "111", True),
        # ... but only a reply to the same post is that reply.
        ("@alice_dev Measure first.", "222", "Measure first.", "111", False),
        ("@alice_dev Measure first.", None, "Measure first.", None, False),
        # A text that starts with a handle of its own still matches itself.
        ("@carol @alice_dev thanks", "111", "@alice_dev thanks", "111", True),
        ("@alice_dev thanks", None, "@alice_dev thanks", None, True),
        # The words must still be the same.
        ("@alice_dev Measure twice.", "111", "Measure first.", "111", False),
        # X's other rewriting, undone as for any post.
        (f"@a Read {TCO_A} &amp; see", "111", "Read https://chirpbase.dev & see", "111", True),
    ],
)
def test_a_reply_is_known_by_its_words_and_the_post_it_answers(
    on_x: str, on_x_reply_to: str | None, sent: str, reply_to: str | None, ours: bool
) -> None:
    tweet = XTweet(
        id=ID,
        text=on_x,
        in_reply_to_tweet_id=on_x_reply_to,
        urls=(link(TCO_A, "https://chirpbase.dev"),) if TCO_A in on_x else (),
    )
    assert matches_sent(sent, tweet, reply_to=reply_to) is ours
