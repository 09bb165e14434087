"""What a reply draft is asked for: the conversation as the model sees it, the prompts, the output.

Pure functions of the configs and the posts; `worker.jobs.draft_reply` does the I/O (the posts
it lacks, OpenAI, pg_trgm similarity) and loops: draft, check, ask again with the failure named.
The checks are the generated tweets' (worker.content.generation: X's weighted length, banned
words, no URL unless allowed, moderation) plus similarity to the account's recent replies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from worker.config.models import Generation, Persona
from worker.content.generation import TARGET_LENGTH, Rejection, clean_text
from worker.content.tweet_text import MAX_WEIGHTED_LENGTH, TRANSFORMED_URL_LENGTH

#: The account's recent replies quoted in the prompt (the similarity check sees the whole window).
PROMPT_RECENT_REPLIES = 5
#: Characters of a post quoted in the prompt (a long post is cut: the model needs its gist).
QUOTED_POST_CHARS = 1200

_LEADING_HANDLES = re.compile(r"^(?:@[A-Za-z0-9_]{1,15}[\s,:]*)+")


class GeneratedReply(BaseModel):
    """The structured output asked of the text model (a strict JSON schema)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        description=(
            "The reply, exactly as it will be posted, without any @handle at the start (X "
            "adds the handle of the person answered by itself)."
        )
    )


@dataclass(frozen=True)
class Post:
    """One post of the conversation, as the prompt shows it."""

    id: str
    text: str
    author: str | None = None  # "@alice", or None when unknown
    ours: bool = False

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "text": self.text, "author": self.author, "ours": self.ours}


@dataclass(frozen=True)
class Thread:
    """The post answered and what it hangs under: the post it replies to (`parent`) and the
    conversation's first post (`root`), when they exist and differ."""

    answering: Post
    parent: Post | None = None
    root: Post | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"answering": self.answering.to_json()}
        if self.parent is not None:
            out["parent"] = self.parent.to_json()
        if self.root is not None:
            out["root"] = self.root.to_json()
        return out


def clean_reply(text: str) -> str:
    """The model's text as it will be posted: `clean_text`, and without leading @handles (X puts
    the answered person's handle there itself; a second one would read as a stammer)."""
    return clean_text(_LEADING_HANDLES.sub("", clean_text(text)))


def reply_system_prompt(persona: Persona, generation: Generation, languages: Sequence[str]) -> str:
    """Who answers, in what voice, and the rules every draft is checked against."""
    if languages:
        language = (
            "Answer in the language of the post you answer when it is one of: "
            f"{', '.join(languages)}; otherwise in {persona.language}."
        )
    else:
        language = f"Answer in the language of the post you answer (default: {persona.language})."
    lines = [
        f'You answer people who wrote to the X account "{persona.name}". '
        f"{persona.description}".strip(),
        f"Tone: {persona.tone}.",
        language,
        "",
        "Rules:",
        f"- One reply, at most {MAX_WEIGHTED_LENGTH} characters as X counts them (every URL "
        f"counts {TRANSFORMED_URL_LENGTH}; emoji and CJK characters count 2). Aim for under "
        f"{min(TARGET_LENGTH, 200)}.",
        "- Answer what they said: helpful, specific, kind. If they ask something you cannot "
        "know, say so briefly.",
        "- Do not start with an @handle: X adds the handle of the person you answer.",
        "- Plain text: no surrounding quotes, no markdown, no hashtags.",
        "- This is an automated account: never claim to be a person, never promise anything on "
        "someone's behalf.",
        "- Do not repeat the account's recent replies.",
    ]
    if not generation.allow_urls:
        lines.append("- No links, URLs or bare domain names (like example.com).")
    if generation.banned_words:
        words = ", ".join(f'"{w}"' for w in generation.banned_words)
        lines.append(f"- Never use these words, in any form or case: {words}")
    lines += ["", "Answer with JSON: `text` (the reply)."]
    return "\n".join(lines)


def _quoted(post: Post) -> str:
    text = " ".join(post.text.split())
    if len(text) > QUOTED_POST_CHARS:
        text = text[: QUOTED_POST_CHARS - 1].rstrip() + "…"
    return text


def reply_user_prompt(
    thread: Thread, recent: Sequence[str], *, feedback: Rejection | None = None
) -> str:
    """The conversation (oldest first), the post to answer, what to avoid, any feedback."""
    lines = ["The conversation on X, oldest first:"]
    for label, post in (("First post", thread.root), ("It replies to", thread.parent)):
        if post is not None:
            who = "the account (you)" if post.ours else (post.author or "someone")
            lines.append(f"- {label}, by {who}: {_quoted(post)}")
    who = thread.answering.author or "someone"
    lines += ["", f"Answer this post by {who}:", _quoted(thread.answering)]
    if recent:
        lines += ["", "The account's recent replies (do not repeat them):"]
        lines += [f"- {' '.join(t.split())}" for t in recent[:PROMPT_RECENT_REPLIES]]
    if feedback is not None:
        lines += ["", feedback.feedback().replace("Write a new tweet", "Write a new reply")]
    return "\n".join(lines)


def too_similar(text: str, similar: str, score: float, threshold: float) -> Rejection:
    return Rejection(
        "near_duplicate",
        f"it is too close to a recent reply (similarity {score:.2f}, limit {threshold:.2f}): "
        f'"{similar}". Say it differently, about this post.',
        text,
    )
