"""Media upload and media metadata on the stand-in (``POST /2/media/upload``, ``/metadata``).

Uploads are checked as X checks them: the bytes must really be a PNG, JPEG, GIF or WEBP image,
at most 5 MB (15 MB for a GIF in a ``*_gif`` category), in one of the categories
``tweet_image``, ``tweet_gif``, ``dm_image``, ``dm_gif``; alt text is at most
1,000 characters. Media Metadata is billed per request ($0.005,
docs.x.com/x-api/getting-started/pricing); the upload itself is not on X's price list.
"""

from __future__ import annotations

import base64
import binascii
import struct

from aiohttp import web

from sandbox.x_api.responses import invalid_request, json_body, param_error, respond, state_of

_IMAGE_LIMIT = 5 * 1024 * 1024


GIF_LIMIT = 15 * 1024 * 1024


_ALT_TEXT_LIMIT = 1000


def _sniff_image(data: bytes) -> tuple[str, int | None, int | None] | None:
    """(mime type, width, height) for real PNG/JPEG/GIF/WEBP bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith(b"\xff\xd8\xff") and len(data) > 4:
        return "image/jpeg", None, None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "image/gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", None, None
    return None


async def media_upload(request: web.Request) -> web.Response:
    state = state_of(request)
    category = "tweet_image"
    payload: bytes | None = None
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        part = form.get("media")
        if isinstance(part, web.FileField):
            payload = part.file.read()
        elif isinstance(part, str):
            payload = part.encode("latin-1")
        category = str(form.get("media_category", category))
        if payload is None and isinstance(form.get("media_data"), str):
            try:
                payload = base64.b64decode(str(form["media_data"]), validate=True)
            except binascii.Error:
                return param_error("media_data", "...", "media_data is not valid base64")
    elif request.content_type == "application/json":
        body = await json_body(request)
        if isinstance(body, web.Response):
            return body
        category = str(body.get("media_category", category))
        try:
            payload = base64.b64decode(str(body.get("media", "")), validate=True)
        except binascii.Error:
            return param_error("media", "...", "media is not valid base64")
    else:
        return invalid_request([{"message": "Use multipart/form-data with a `media` part."}])
    if category not in ("tweet_image", "tweet_gif", "dm_image", "dm_gif"):
        return param_error("media_category", category, f"media_category [{category}] is not valid")
    if not payload:
        return param_error("media", "", "The `media` field is required.")
    sniffed = _sniff_image(payload)
    if sniffed is None:
        return invalid_request([{"message": "media type unrecognized."}])
    mime, width, height = sniffed
    limit = GIF_LIMIT if category.endswith("_gif") and mime == "image/gif" else _IMAGE_LIMIT
    if len(payload) > limit:
        return invalid_request(
            [{"message": f"File size exceeds {limit} bytes (got {len(payload)})."}]
        )
    media = state.add_media(
        state.me.id,
        size=len(payload),
        mime_type=mime,
        media_category=category,
        width=width,
        height=height,
    )
    return respond(
        {
            "data": {
                "id": media.id,
                "media_key": media.media_key,
                "size": media.size,
                "expires_after_secs": state.media_expires_after_secs,
                "image": {"image_type": mime, "w": width, "h": height},
            }
        }
    )


async def media_metadata(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await json_body(request)
    if isinstance(body, web.Response):
        return body
    media_id = str(body.get("id", ""))
    metadata = body.get("metadata")
    alt = metadata.get("alt_text") if isinstance(metadata, dict) else None
    text = alt.get("text") if isinstance(alt, dict) else None
    if not isinstance(text, str):
        return param_error("metadata.alt_text.text", str(text), "alt_text.text is required")
    if len(text) > _ALT_TEXT_LIMIT:
        return param_error(
            "metadata.alt_text.text",
            text[:20] + "...",
            f"alt_text.text is longer than {_ALT_TEXT_LIMIT} characters ({len(text)})",
        )
    media = state.media.get(media_id)
    if media is None or media.owner_id != state.me.id or media.expires_at <= state.now():
        return param_error("id", media_id, "Your media ID is invalid.")
    media.alt_text = text
    state.billing.charge("media_metadata")
    return respond({"data": {"id": media.id, "associated_metadata": {"alt_text": {"text": text}}}})
