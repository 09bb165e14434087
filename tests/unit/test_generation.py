"""worker.content.generation: prompts, cleaning and the checks that need no I/O."""

from __future__ import annotations

import pytest

from worker.config.models import Generation, Persona
from worker.content.generation import (
    ALT_TEXT_MAX_CHARS,
    Draft,
    GeneratedTweet,
    Rejection,
    banned_words_in,
    check_draft,
    clean_text,
    image_prompt,
    system_prompt,
    user_prompt,
)


def draft(text: str, alt: str = "") -> Draft:
    return Draft.from_output(GeneratedTweet(text=text, alt_text=alt, image_prompt="a boat"))


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Pure SYNERGY today", ["synergy"]),
        ("synergy.", ["synergy"]),
        ("synergystic and unsynergy", []),  # whole words only
        ("We go TO  THE\nmoon", ["to the moon"]),  # phrases, any spacing
        ("Crème brûlée", ["brûlée"]),
        ("nothing here", []),
    ],
)
def test_banned_words_are_whole_words_in_any_case(text: str, found: list[str]) -> None:
    assert banned_words_in(text, ["synergy", "to the moon", "brûlée", "  "]) == found


def test_clean_text_strips_wrapping_quotes_and_normalises() -> None:
    assert clean_text('  "Ship it."  ') == "Ship it."
    assert clean_text("\u201cShip it.\u201d") == "Ship it."
    assert clean_text('He said "no" twice') == 'He said "no" twice'
    assert clean_text("Cafe\u0301") == "Café"


def test_length_check_counts_like_x() -> None:
    generation = Generation(allow_urls=True)
    url = "https://example.com/" + "a" * 200
    assert check_draft(draft(f"Read this {url}"), generation) is None  # a URL counts 23
    cjk = "漢" * 141  # 282 weighted
    rejection = check_draft(draft(cjk), generation)
    assert rejection is not None and rejection.check == "length"
    assert "282 characters as X counts them" in rejection.reason
    empty = check_draft(draft('  ""  '), generation)
    assert empty is not None and empty.check == "length"


@pytest.mark.parametrize(
    "text", ["Read this https://example.com/post", "docs at example.com today", "see x.co/abc"]
)
def test_a_link_is_refused_unless_urls_are_allowed(text: str) -> None:
    """X bills a post with a URL $0.20 instead of $0.015: a draft with one is written again."""
    rejection = check_draft(draft(text), Generation())
    assert rejection is not None and rejection.check == "url"
    assert "without any URL" in rejection.reason and "without any URL" in rejection.feedback()
    assert check_draft(draft(text), Generation(allow_urls=True)) is None
    assert "No links" in system_prompt(Persona(), Generation())
    assert "No links" not in system_prompt(Persona(), Generation(allow_urls=True))


def test_no_link_is_seen_where_x_sees_none() -> None:
    for text in ("version 3.14 is out", "email me at a@b", "open readme.txt first"):
        assert check_draft(draft(text), Generation()) is None, text


def test_banned_words_in_alt_text_count_too() -> None:
    rejection = check_draft(
        draft("Fine text", "an image full of synergy"), Generation(banned_words=["synergy"])
    )
    assert rejection is not None and rejection.check == "banned_words"


def test_alt_text_is_clipped_to_x_limit() -> None:
    d = draft("ok", "word " * 400)
    assert len(d.alt_text) <= ALT_TEXT_MAX_CHARS and d.alt_text.endswith("…")


def test_system_prompt_carries_persona_and_rules() -> None:
    persona = Persona(
        name="pgbot", tone="dry", language="fr", examples=["Un index, deux requêtes."]
    )
    generation = Generation(hashtags=["postgres", "#sql"], banned_words=["synergy"])
    prompt = system_prompt(persona, generation)
    for expected in (
        '"pgbot"',
        "Tone: dry.",
        "language: fr",
        "#postgres #sql",
        '"synergy"',
        "Un index, deux requêtes.",
        "at most 280",
    ):
        assert expected in prompt


def test_user_prompt_lists_recent_tweets_image_brief_and_feedback() -> None:
    feedback = Rejection("moderation", "the moderation check flagged it (hate).", "bad draft")
    prompt = user_prompt(
        "indexes", ["old one", "older one"], image_brief="a tree", feedback=feedback
    )
    assert prompt.startswith("Topic: indexes")
    assert "- old one" in prompt and "- older one" in prompt
    assert 'brief: "a tree"' in prompt
    assert "rejected (moderation)" in prompt and '"bad draft"' in prompt


def test_image_prompt_uses_topic_and_style() -> None:
    prompt = image_prompt("indexes", Persona(), Generation(style="watercolour"))
    assert "indexes" in prompt and "watercolour" in prompt
