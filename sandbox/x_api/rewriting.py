"""How X stores the text of a post: what a client reads back is not what it sent.

Three rewrites, each from X's documentation:

- **Every link is wrapped in t.co**, bare domains included. "All links submitted within Tweets
  and Direct Messages, regardless of length, will eventually be wrapped with the t.co
  shortener ... Twitter wraps links without protocols in addition to fully qualified HTTP or
  HTTPs URLs" (https://developer.x.com/en/docs/tco). Which links: the ones twitter-text
  extracts, the same scan that counts them 23 characters (``text.url_spans``). Each link gets
  an ``entities.urls`` item ``{start, end, url, expanded_url, display_url}``; a link typed
  without a protocol comes back with ``http://`` in ``expanded_url``.
- **A post with media gets a t.co link to it appended** to its text, with an
  ``entities.urls`` item whose ``expanded_url`` is ``https://x.com/<user>/status/<id>/photo/1``,
  ``display_url`` ``pic.x.com/...`` and ``media_key`` the attached media's key
  (xdevplatform/docs ``x-api/fundamentals/data-dictionary.mdx``, the Tweet object's sample
  response; ``x-api/fundamentals/data-dictionary/reference.mdx`` shows the same appended link
  for a video, there without ``media_key``).
- **``&``, ``<`` and ``>`` come back as HTML entities** (``&amp;``, ``&lt;``, ``&gt;``), as in
  the sample post text in ``data-dictionary.mdx`` ("understand &amp; respond").

X's documentation does not say whether ``start``/``end`` count the escaped or the unescaped
text; here they are code point offsets into the text as returned (escaped). Clients should not
depend on either: chirpbase finds each ``url`` in the text instead.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from sandbox.x_api.text import url_spans

TCO_PREFIX = "https://t.co/"
_SLUG_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_DISPLAY_MAX = 26
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class StoredText:
    """A post's text as X stores and returns it, with its ``entities.urls``."""

    text: str
    urls: list[dict[str, Any]] = field(default_factory=list)


def tco_slug() -> str:
    """A fresh t.co path (X's are 10 characters of [A-Za-z0-9])."""
    return "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(10))


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as X returns them."""
    return "".join(_ESCAPES.get(char, char) for char in text)


def display_url(expanded: str) -> str:
    """``expanded`` without its protocol, shortened with an ellipsis as X displays long links."""
    shown = expanded.split("://", 1)[-1]
    return shown if len(shown) <= _DISPLAY_MAX else shown[: _DISPLAY_MAX - 1] + "\u2026"


def store_text(
    text: str, *, tweet_id: str, username: str, media_keys: list[str] | None = None
) -> StoredText:
    """``text`` (as a client sent it) rewritten the way X stores it.

    Links become t.co links, ``&<>`` become entities, and when the post has media a t.co link
    to the first attachment is appended (one link for all of a post's media, as X does).
    """
    text = unicodedata.normalize("NFC", text)
    pieces: list[str] = []
    urls: list[dict[str, Any]] = []
    length = 0  # code points written so far
    cursor = 0
    for start, end in url_spans(text):
        literal = escape(text[cursor:start])
        pieces.append(literal)
        length += len(literal)
        typed = text[start:end]
        expanded = typed if typed.lower().startswith(("http://", "https://")) else f"http://{typed}"
        url = TCO_PREFIX + tco_slug()
        urls.append(
            {
                "start": length,
                "end": length + len(url),
                "url": url,
                "expanded_url": expanded,
                "display_url": display_url(expanded),
            }
        )
        pieces.append(url)
        length += len(url)
        cursor = end
    tail = escape(text[cursor:])
    pieces.append(tail)
    length += len(tail)
    if media_keys:
        slug = tco_slug()
        url = TCO_PREFIX + slug
        separator = " " if length else ""
        start = length + len(separator)
        pieces.append(separator + url)
        urls.append(
            {
                "start": start,
                "end": start + len(url),
                "url": url,
                "expanded_url": f"https://x.com/{username}/status/{tweet_id}/photo/1",
                "display_url": f"pic.x.com/{slug}",
                "media_key": media_keys[0],
            }
        )
    return StoredText("".join(pieces), urls)
