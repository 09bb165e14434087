"""What a generated tweet is asked for and checked against: prompts, the output model, checks.

Pure functions of the configs and the draft; `worker.jobs.generate_tweet` does the I/O (OpenAI,
pg_trgm similarity, Storage) and loops: draft, check, ask again with the failure named.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from worker.config.models import Generation, Persona
from worker.content.tweet_text import (
    MAX_WEIGHTED_LENGTH,
    TRANSFORMED_URL_LENGTH,
    extract_url_spans,
    weighted_length,
)

__all__ = [
    "ALT_TEXT_MAX_CHARS",
    "Draft",
    "GeneratedTweet",
    "Rejection",
    "banned_words_in",
    "check_draft",
    "clean_text",
    "flagged",
    "image_prompt",
    "invalid_output",
    "near_duplicate",
    "system_prompt",
    "user_prompt",
]

#: X's limit for an image description (media metadata `alt_text.text`).
ALT_TEXT_MAX_CHARS = 1000
#: Recent tweets quoted in the prompt (the similarity check looks at the whole window).
PROMPT_RECENT_LIMIT = 10
#: Length the model is asked to aim for, leaving room below X's 280.
TARGET_LENGTH = 240

Check = Literal["length", "banned_words", "url", "near_duplicate", "moderation", "invalid_output"]


class GeneratedTweet(BaseModel):
    """The structured output asked of the text model (a strict JSON schema)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The tweet, exactly as it will be posted.")
    alt_text: str = Field(
        description=(
            "Alt text for the image that accompanies the tweet: what it shows, for someone who "
            "cannot see it. One or two plain sentences. Empty when there is no image."
        )
    )
    image_prompt: str = Field(
        description=(
            "A concrete description of a picture that would suit the tweet, for an image model. "
            "No text or lettering in the picture."
        )
    )


@dataclass(frozen=True)
class Draft:
    """A cleaned-up model answer, ready for the checks."""

    text: str
    alt_text: str
    image_prompt: str

    @classmethod
    def from_output(cls, output: GeneratedTweet) -> Draft:
        return cls(
            text=clean_text(output.text),
            alt_text=_clip(" ".join(output.alt_text.split()), ALT_TEXT_MAX_CHARS),
            image_prompt=" ".join(output.image_prompt.split()),
        )


@dataclass(frozen=True)
class Rejection:
    """Why a draft cannot be used; `feedback()` is what the next prompt tells the model."""

    check: Check
    reason: str
    draft: str | None = None

    def feedback(self) -> str:
        lines = [
            f"Your previous draft was rejected ({self.check.replace('_', ' ')}): {self.reason}"
        ]
        if self.draft:
            lines.append(f'The rejected draft was: "{self.draft}"')
        lines.append("Write a new tweet that fixes this.")
        return "\n".join(lines)


# -- prompts ---------------------------------------------------------------------------------


def system_prompt(persona: Persona, generation: Generation) -> str:
    """Who writes, in what voice, and the rules every draft is checked against."""
    lines = [
        f'You write tweets for the X account "{persona.name}". {persona.description}'.strip(),
        f"Tone: {persona.tone}.",
        f"Write in this language: {persona.language}.",
        "",
        "Rules:",
        f"- One tweet, at most {MAX_WEIGHTED_LENGTH} characters as X counts them (every URL "
        f"counts {TRANSFORMED_URL_LENGTH}; emoji and CJK characters count 2). Aim for under "
        f"{TARGET_LENGTH}.",
        "- Plain text as it will be posted: no surrounding quotes, no markdown.",
        "- Say something new: do not repeat or closely paraphrase the account's recent tweets.",
    ]
    if not generation.allow_urls:
        lines.append("- No links, URLs or bare domain names (like example.com).")
    if generation.hashtags:
        tags = " ".join(_hashtag(t) for t in generation.hashtags)
        lines.append(f"- Include these hashtags: {tags}")
    else:
        lines.append("- No hashtags.")
    if generation.banned_words:
        words = ", ".join(f'"{w}"' for w in generation.banned_words)
        lines.append(f"- Never use these words, in any form or case: {words}")
    if persona.examples:
        lines += ["", "Tweets in the account's voice (style only, do not copy):"]
        lines += [f"- {' '.join(e.split())}" for e in persona.examples]
    lines += [
        "",
        "Answer with JSON: `text` (the tweet), `alt_text` (a description of the image that goes "
        "with it, or empty when there is none) and `image_prompt` (a picture that would suit it).",
    ]
    return "\n".join(lines)


def user_prompt(
    topic: str,
    recent: Sequence[str],
    *,
    image_brief: str | None,
    feedback: Rejection | None = None,
) -> str:
    """The request for one draft: topic first, then what to avoid, the image, any feedback."""
    lines = [f"Topic: {' '.join(topic.split())}"]
    if recent:
        lines += ["", "The account's recent tweets (do not repeat them):"]
        lines += [f"- {' '.join(t.split())}" for t in recent[:PROMPT_RECENT_LIMIT]]
    lines.append("")
    if image_brief:
        lines.append(
            "An image is drawn for this tweet from this brief: "
            f'"{image_brief}". Write `alt_text` describing that image.'
        )
    else:
        lines.append("The tweet has no image: leave `alt_text` empty.")
    if feedback is not None:
        lines += ["", feedback.feedback()]
    return "\n".join(lines)


def thread_part_topic(topic: str, position: int, total: int, earlier: Sequence[str]) -> str:
    """The topic of part `position` of a generated thread of `total`: the thread's topic, the
    part's place, and the parts written so far, so each post follows on from the one before and
    stands on its own (X shows each post of a thread alone too)."""
    place = f"post {position} of a {total}-post thread on X about: {' '.join(topic.split())}."
    lines = [place, "Write only this post; it must read on its own and follow the ones before."]
    if position == 1:
        lines.append("It opens the thread: say what the thread is about.")
    if position == total:
        lines.append("It closes the thread.")
    if earlier:
        lines.append("The thread so far:")
        lines += [f"{i}/{total}: {' '.join(t.split())}" for i, t in enumerate(earlier, start=1)]
    return " ".join(lines)


def image_prompt(topic: str, persona: Persona, generation: Generation) -> str:
    """The image brief, from the topic and style alone, so the image starts with the text."""
    return (
        f"An image to accompany a tweet about {' '.join(topic.split())}, for an account that "
        f"is {persona.tone}. Style: {generation.style}. No text, letters or logos in the image."
    )


# -- checks ----------------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """The model's text as it will be posted: NFC, trimmed, without wrapping quotes."""
    text = unicodedata.normalize("NFC", text).strip()
    for left, right in (('"', '"'), ("\u201c", "\u201d")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            text = text[1:-1].strip()
    return text


def banned_words_in(text: str, banned: Iterable[str]) -> list[str]:
    """The banned words (or phrases) `text` contains: whole words, any case, in config order."""
    return [word for word in banned if word.strip() and _word_pattern(word).search(text)]


def check_draft(draft: Draft, generation: Generation) -> Rejection | None:
    """The checks that need no I/O: empty text, X's weighted length, banned words, and no URL
    unless `generation.allow_urls` (X bills a post with a URL at 13 times a plain post's price)."""
    if not draft.text:
        return Rejection("length", "the text was empty", draft.text)
    length = weighted_length(draft.text)
    if length > MAX_WEIGHTED_LENGTH:
        return Rejection(
            "length",
            f"it is {length} characters as X counts them; the limit is {MAX_WEIGHTED_LENGTH} "
            f"(URLs count {TRANSFORMED_URL_LENGTH}, emoji and CJK characters 2). Make it "
            f"shorter, under {TARGET_LENGTH}.",
            draft.text,
        )
    found = banned_words_in(f"{draft.text}\n{draft.alt_text}", generation.banned_words)
    if found:
        words = ", ".join(f'"{w}"' for w in found)
        return Rejection("banned_words", f"it uses banned words: {words}", draft.text)
    if not generation.allow_urls:
        spans = extract_url_spans(draft.text)
        if spans:
            # X bills a post with a URL $0.20 instead of $0.015 (configs.pricing.x).
            links = ", ".join(f'"{draft.text[a:b]}"' for a, b in spans)
            return Rejection(
                "url",
                f"it contains a link ({links}); write it without any URL or domain name",
                draft.text,
            )
    return None


def near_duplicate(draft: Draft, similar: str, score: float, threshold: float) -> Rejection:
    return Rejection(
        "near_duplicate",
        f"it is too close to a recent tweet (similarity {score:.2f}, limit {threshold:.2f}): "
        f'"{similar}". Say something different.',
        draft.text,
    )


def flagged(draft: Draft, categories: Sequence[str]) -> Rejection:
    named = ", ".join(categories) or "unspecified"
    return Rejection(
        "moderation",
        f"the moderation check flagged it ({named}). Keep it friendly and safe.",
        draft.text,
    )


def invalid_output(reason: str) -> Rejection:
    return Rejection(
        "invalid_output", f"the answer was not valid JSON for the schema ({reason})", None
    )


# -- helpers ---------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _word_pattern(word: str) -> re.Pattern[str]:
    # Whole words: no word character on either side; inner spaces match any whitespace.
    body = r"\s+".join(re.escape(part) for part in word.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _hashtag(tag: str) -> str:
    tag = tag.strip()
    return tag if tag.startswith("#") else f"#{tag}"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"
