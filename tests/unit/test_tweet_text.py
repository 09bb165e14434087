"""X's weighted length (twitter-text v3 rules) in worker.content.tweet_text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.content.tweet_text import (
    MAX_WEIGHTED_LENGTH,
    TweetTextError,
    extract_url_spans,
    is_valid_tweet_text,
    measure,
    validate_tweet_text,
    weighted_length,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # man, woman, girl, boy
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ASCII and other code points weighted 1
        ("hello world", 11),
        ("A lié géts", 10),
        ("\u2013 \u2014 \u2018\u2019 \u201c\u201d \u2032", 11),  # dashes, quotes, prime: weight 1
        ("\u2026", 2),  # the ellipsis is outside the weight-1 ranges
        ("a\r\nb", 4),  # line endings are characters like any other
        # CJK, Hangul, astral planes: 2 each
        ("日本語", 6),
        ("저찀쯿쿿", 8),
        ("\U00020000", 2),
        ("\U00010000\U0010ffff", 4),
        # emoji: one emoji, whatever its sequence, counts 2
        ("😷", 2),
        ("😷👾😡🔥💩", 10),
        (FAMILY, 2),
        ("👍🏽", 2),
        ("🙋🏽👨\u200d🎤", 4),
        ("👩🏾\u200d💻", 2),
        ("🇯🇵", 2),
        ("🏳️\u200d🌈", 2),
        (ENGLAND, 2),
        ("1️⃣", 2),
        ("#\u20e3", 2),
        ("❤️", 2),
        ("🐦\u200d🔥", 2),  # phoenix (Emoji 15.1): newer than twitter-text's data, 2 on X
        ("\U0001f431\u200d\U0001f436", 5),  # cat ZWJ dog is no emoji: 2 + 1 + 2
        ("\U0001f1e6\U0001f1e6", 4),  # no country AA: two regional indicators
        ("\U0001f3f3\u200d\U0001f308", 5),  # rainbow flag without its U+FE0F: not RGI
        ("\U0001fae8", 2),  # shaking face (Unicode 15)
        ("☕🏽", 4),  # hot beverage takes no skin tone: two emoji
        ("©", 1),  # text-default symbols are emoji only with U+FE0F
        ("©️", 2),
        ("H🐱☺", 5),
        # combining characters: NFC first
        ("e\u0301", 1),
        ("Ä", 1),
        ("q\u0307", 2),  # no precomposed form: two code points of weight 1
        ("Aשּׁ", 4),
        # URLs count 23, with or without scheme
        ("https://example.com/a/very/long/path/that/is/longer/than/twenty/three", 23),
        ("http://test.co", 23),
        ("Hi http://test.co", 26),
        ("HTTPS://www.ExaMPLE.COM/index.html", 23),
        ("example.com", 23),
        ("www.example.com", 23),
        ("see example.com/foo bar", 31),
        ("t.co", 23),
        ("foo.co.jp", 23),
        ("x.tv", 23),
        ("foo.jp", 23),  # twitter-text 3 links bare country domains too (1.x did not)
        ("foo.jp/x", 23),
        ("Test https://test.com test https://test.com test.com test", 86),
        ("http://☃.net/", 23),
        ("https://en.wikipedia.org/wiki/Primer_(film).", 24),
        ("http://twitter.com/これは日本語です。example.com中国語", 70),
        # not URLs
        ("a.b", 3),
        ("file.py", 23),  # .py is Paraguay: X links it
        ("file.rs", 23),  # .rs is Serbia
        ("file.txt", 8),
        ("node.js", 7),
        ("me@example.com", 14),
        ("http://localhost:8080", 21),
        ("randomurlrandomurlrandomurlrandomurlrandomurlrandomurlrandomurls.com", 68),
        ("foo.bar.baz", 27),  # "foo.bar" is a URL (.bar is a TLD), ".baz" is text
    ],
)
def test_weighted_length(text: str, expected: int) -> None:
    assert weighted_length(text) == expected


def test_limits_are_inclusive_at_280() -> None:
    assert weighted_length("a" * 280) == 280
    validate_tweet_text("a" * 280)
    assert not is_valid_tweet_text("a" * 281)
    assert is_valid_tweet_text("日" * 140)
    assert not is_valid_tweet_text("日" * 141)
    assert is_valid_tweet_text(FAMILY * 140)
    long_urls = " ".join(["https://example.com/" + "x" * 200] * 11)
    assert weighted_length(long_urls) == 11 * 23 + 10
    assert is_valid_tweet_text(long_urls)


def test_error_message_gives_the_measured_length() -> None:
    with pytest.raises(TweetTextError, match="weighted length 282 > 280") as info:
        validate_tweet_text("日" * 141)
    assert isinstance(info.value, ValueError)
    assert info.value.weighted_length == 282


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_blank_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        validate_tweet_text(text)


def test_invalid_characters_are_refused() -> None:
    result = measure("ABC\u202a\uffffABC\ufffe")
    assert result.weighted_length == 12
    assert result.has_invalid_characters and not result.valid
    with pytest.raises(ValueError, match="U\\+FFFE"):
        validate_tweet_text("hello\ufeff")
    # directional marks are fine
    assert is_valid_tweet_text("\u2066\u202ahttp://foobar.پاکستان/\u202c\u2069")


def test_url_spans() -> None:
    text = "go https://t.co/abc?x=1 and example.com/path."
    spans = extract_url_spans(text)
    assert [text[a:b] for a, b in spans] == ["https://t.co/abc?x=1", "example.com/path"]
    # t.co slugs longer than 40 are not t.co links
    assert extract_url_spans("https://t.co/" + "a" * 41) == []
    # no URL right after - _ . /
    assert extract_url_spans("_example.com /example.com") == []


def test_measure_counts_entities() -> None:
    result = measure("📷 https://example.com 🇫🇷")
    assert (result.url_count, result.emoji_count, result.weighted_length) == (1, 2, 29)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_weighted_length_is_total_and_bounded(text: str) -> None:
    length = weighted_length(text)
    assert 0 <= length <= 2 * len(text) + 23
    assert measure(text).valid == (
        0 < length <= MAX_WEIGHTED_LENGTH and not any(c in "\ufffe\ufeff\uffff" for c in text)
    )
