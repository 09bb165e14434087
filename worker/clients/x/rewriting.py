"""Is this post on X the one we sent? X's rewriting of a post's text, undone (pure).

What X stores and returns is not the text a client sent:

- every link is replaced by a t.co link, bare domains it auto-links included ("Twitter wraps
  links without protocols in addition to fully qualified HTTP or HTTPs URLs",
  https://developer.x.com/en/docs/tco); ``entities.urls[].expanded_url`` holds the link as
  sent (``http://`` added to a bare domain), ``display_url`` the way X shows it;
- a post with media gets a t.co link to it appended, an ``entities.urls`` item with a
  ``media_key`` and an ``expanded_url`` such as ``https://x.com/<user>/status/<id>/photo/1``
  (xdevplatform/docs ``x-api/fundamentals/data-dictionary.mdx``; ``.../reference.mdx`` shows
  one without ``media_key``), and the media's keys in ``attachments.media_keys``;
- ``&``, ``<`` and ``>`` come back as ``&amp;``, ``&lt;``, ``&gt;`` (same page, sample text);
- a reply comes back with the handles of the people it answers in front of its text (the
  replied-to author's and the thread's; ``reply.exclude_reply_user_ids`` of ``POST /2/tweets``
  removes some, openapi.json ``TweetCreateRequest.reply``), which the sender did not write.

:func:`matches_sent` rebuilds the sent text from what X returned and compares it, with the
attachments, to what chirpbase sent (both NFC, whitespace runs as one space). t.co links are
located by their ``url`` in the text, never by ``start``/``end``: X's docs do not say whether
those offsets count the escaped text. A link matches the URL as sent, the same URL without the
``http://`` X adds to a bare domain, or (when X gave no ``expanded_url``) its ``display_url``
when X did not shorten that.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from worker.clients.x.shapes import UrlEntity, XTweet

_ENTITY = re.compile(r"&(amp|lt|gt);")
_UNESCAPED = {"amp": "&", "lt": "<", "gt": ">"}
_SPACES = re.compile(r"\s+")
_LEADING_HANDLES = re.compile(r"^(?:@\w{1,15}\s+)+")


def unescape(text: str) -> str:
    """Undo X's ``&amp;``/``&lt;``/``&gt;`` (only those: X escapes nothing else)."""
    return _ENTITY.sub(lambda m: _UNESCAPED[m[1]], text)


def normalized(text: str) -> str:
    """NFC, whitespace runs as one space, trimmed: how both sides are compared."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _is_media_link(link: UrlEntity, tweet: XTweet) -> bool:
    if link.media_key:
        return True
    if not tweet.media_keys:
        return False
    pattern = rf"https?://(?:www\.)?(?:x|twitter)\.com/[^/]+/status/{re.escape(tweet.id)}/(?:photo|video)/\d+"
    return re.fullmatch(pattern, link.expanded_url or "") is not None


def _link_forms(link: UrlEntity) -> list[str]:
    """What the sender may have typed for a link X wrapped."""
    forms: list[str] = []
    expanded = link.expanded_url
    if expanded:
        forms.append(expanded)
        if expanded.lower().startswith("http://"):
            forms.append(expanded[len("http://") :])  # a bare domain: X added the protocol
    elif link.display_url and not link.display_url.endswith("\u2026"):
        # Only without an expanded_url: "chirpbase.dev" is the display of a link sent as
        # "https://chirpbase.dev" too, and would match a post the sender did not write.
        forms.append(link.display_url)
    if not forms:
        forms.append(link.url)  # nothing to expand it with: the t.co link itself
    return [unicodedata.normalize("NFC", form) for form in dict.fromkeys(forms)]


def sent_text_pattern(tweet: XTweet) -> re.Pattern[str]:
    """A pattern every text that X would store as ``tweet`` matches (after :func:`normalized`)."""
    text = tweet.text
    pieces: list[str] = []  # regular expression pieces
    literal: list[str] = []  # text between links, as returned (escaped)
    cursor = 0
    for link in tweet.urls:
        at = text.find(link.url, cursor)
        if at < 0:
            continue  # an entity that is not in the text: nothing to undo
        literal.append(text[cursor:at])
        if _is_media_link(link, tweet):
            cursor = at + len(link.url)  # appended by X, not sent
            continue
        pieces.append(_literal_pattern("".join(literal)))
        literal = []
        pieces.append("(?:" + "|".join(re.escape(f) for f in _link_forms(link)) + ")")
        cursor = at + len(link.url)
    literal.append(text[cursor:])
    pieces.append(_literal_pattern("".join(literal)))
    # Trimmed on the sent side: trim here too (the appended media link left a trailing space).
    return re.compile(_trim("".join(pieces)), re.DOTALL)


def _literal_pattern(escaped: str) -> str:
    plain = _SPACES.sub(" ", unicodedata.normalize("NFC", unescape(escaped)))
    return "\x00".join(re.escape(part) for part in plain.split(" ")) if plain else ""


def _trim(pattern: str) -> str:
    # Spaces in literals are written as NUL placeholders so that only they are trimmed here.
    return pattern.strip("\x00").replace("\x00", " ")


def matches_sent(
    sent: str, tweet: XTweet, *, media_count: int = 0, reply_to: str | None = None
) -> bool:
    """True when ``tweet`` (as X returned it) is a post of ``sent`` with ``media_count``
    attachments: its text with X's rewriting undone equals ``sent``, and it carries as many
    media as were sent. When ``sent`` was a reply to ``reply_to`` and ``tweet`` answers that
    post, the handles in front of either text are left out (X put some there)."""
    if len(tweet.media_keys) != media_count:
        return False
    if sent_text_pattern(tweet).fullmatch(normalized(sent)) is not None:
        return True
    if reply_to is None or tweet.in_reply_to_tweet_id != reply_to:
        return False
    bare = dataclasses.replace(tweet, text=_LEADING_HANDLES.sub("", tweet.text))
    return sent_text_pattern(bare).fullmatch(_LEADING_HANDLES.sub("", normalized(sent))) is not None
