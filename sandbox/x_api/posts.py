"""Writing on X through the stand-in: ``POST /2/tweets``, ``DELETE /2/tweets/:id``, likes.

Creating a post refuses what X refuses: no text and no media, text twitter-text counts as too
long (``text``), a malformed poll (``polls``), a duplicate of a posted text as sent; it
applies the access tier's rules (``access``: quote posts and likes only on Enterprise, the
summoned-reply rule of self-serve tiers since 2026-02-23). It bills Post: Create, with a URL
or summoned, at docs.x.com/x-api/getting-started/pricing's prices, and counts the monthly post
cap; ``XState.create_tweet`` stores the text as X rewrites it (t.co links, ``rewriting``).
"""

from __future__ import annotations

import asyncio
import unicodedata

from aiohttp import web

from sandbox.x_api import access, polls
from sandbox.x_api.responses import (
    invalid_request,
    json_body,
    not_found,
    param_error,
    problem,
    respond,
    state_of,
)
from sandbox.x_api.text import contains_url, is_blank, refusal


async def create_tweet(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    body = await json_body(request)
    if isinstance(body, web.Response):
        return body
    text = body.get("text")
    media = body.get("media") or {}
    reply = body.get("reply") or {}
    media_ids = media.get("media_ids") if isinstance(media, dict) else None
    if text is not None and not isinstance(text, str):
        return param_error("text", str(text), "The `text` field must be a string.")
    text = text or ""
    # Whitespace alone is no text: X refuses it unless media carries the post (is_blank).
    if is_blank(text) and not media_ids:
        return invalid_request([{"message": "You must specify either a text or media."}])
    if not is_blank(text) and refusal(text) is not None:
        return invalid_request(
            [
                {
                    "parameters": {"text": [text]},
                    "message": "Your Tweet text is too long. For more information on how X "
                    "determines text length see https://github.com/twitter/twitter-text.",
                }
            ]
        )
    poll = body.get("poll")
    if poll is not None:  # the body's schema is checked before ids and access (polls.py)
        quotes = body.get("quote_tweet_id") is not None
        refused = polls.refusal(poll, media=media_ids is not None, quote=quotes)
        if refused is not None:
            return invalid_request([refused])
    media_keys: list[str] = []
    if media_ids is not None:
        if not isinstance(media_ids, list) or not 1 <= len(media_ids) <= 4:
            return param_error("media.media_ids", str(media_ids), "Your media IDs are invalid.")
        for media_id in media_ids:
            item = state.media.get(str(media_id))
            if item is None or item.owner_id != state.me.id or item.expires_at <= state.now():
                return param_error("media.media_ids", str(media_id), "Your media IDs are invalid.")
            media_keys.append(item.media_key)
    quoted = body.get("quote_tweet_id")
    if quoted is not None:
        if not access.allows(state.access_tier, "quotes"):
            return respond(access.client_forbidden(state.project_id[-8:], state.problem_base), 403)
        target = state.get_tweet(str(quoted))
        if target is None or target.deleted:
            return problem(403, "Forbidden", "You attempted to quote a Tweet that is deleted.")
    parent_id = reply.get("in_reply_to_tweet_id") if isinstance(reply, dict) else None
    summoned_reply = False
    if parent_id is not None:
        parent = state.get_tweet(str(parent_id))
        if parent is None or parent.deleted:
            return problem(
                403,
                "Forbidden",
                "You attempted to reply to a Tweet that is deleted or not visible to you.",
            )
        summoned_reply = parent.author_id != state.me.id and state.summoned_by(parent)
        if access.self_serve(state.access_tier) and not state.summoned_by(parent):
            return respond(access.not_summoned(), 403)
        excluded = reply.get("exclude_reply_user_ids") or []
        if not isinstance(excluded, list):
            return param_error(
                "reply.exclude_reply_user_ids", str(excluded), "must be a list of user ids"
            )
        # X puts the replied-to handles before the text (state.reply_handles).
        handles = state.reply_handles(state.me.id, parent, {str(u) for u in excluded})
        if handles:
            text = " ".join(f"@{h}" for h in handles) + " " + text
    # X's duplicate check is on the text as sent (what it stores is rewritten: t.co links ...).
    sent = unicodedata.normalize("NFC", text)
    for tweet in state.posted_tweets():
        if text and tweet.source_text == sent:
            return problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            )
    tweet = state.create_tweet(
        state.me.id,
        text,
        in_reply_to=str(parent_id) if parent_id else None,
        media_keys=media_keys,
        quote_of=str(quoted) if quoted is not None else None,
        made_with_ai=body.get("made_with_ai") is True,
        lang=state.detect_lang(text),
    )
    if poll is not None:
        state.polls.create(tweet.id, poll["options"], poll["duration_minutes"])
    state.count_post()
    # Post: Create, with URL, summoned (docs.x.com/x-api/getting-started/pricing)
    if contains_url(text):
        state.billing.charge("post_with_url")
    else:
        state.billing.charge("reply_summoned" if summoned_reply else "post")
    drop = state.take_drop_after_create()
    if drop == "hang":
        await state.wait_hang(3600)
    if drop is not None:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # nothing more to send: the connection is gone
    return respond(
        {"data": {"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}}, 201
    )


async def delete_tweet(request: web.Request) -> web.Response:
    state = state_of(request)
    tweet_id = request.match_info["id"]
    tweet = state.get_tweet(tweet_id)
    if tweet is None or tweet.deleted:
        return respond({"errors": [not_found("tweet", tweet_id, "id")]}, 404)
    if tweet.author_id != state.me.id:
        return problem(403, "Forbidden", "You are not allowed to delete this Tweet.")
    tweet.deleted = True
    return respond({"data": {"deleted": True}})


async def like(request: web.Request) -> web.Response:
    state = state_of(request)
    if not access.allows(state.access_tier, "likes"):
        return respond(access.client_forbidden(state.project_id[-8:], state.problem_base), 403)
    user_id = request.match_info["id"]
    if user_id != state.me.id:
        return problem(403, "Forbidden", "You are not permitted to perform this action.")
    body = await json_body(request)
    if isinstance(body, web.Response):
        return body
    tweet_id = str(body.get("tweet_id", ""))
    if not tweet_id.isdigit():
        return param_error("tweet_id", tweet_id, "The `tweet_id` field must be a Tweet id.")
    tweet = state.get_tweet(tweet_id)
    if tweet is None or tweet.deleted:
        return respond({"errors": [not_found("tweet", tweet_id, "tweet_id")]})
    state.like(user_id, tweet_id)
    return respond({"data": {"liked": True}})
