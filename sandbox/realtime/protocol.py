"""The websocket protocol: the handshake (`apikey`, `vsn` 1.0.0 JSON objects or 2.0.0 arrays, 401
with `{"error": ...}` as `RealtimeWeb.UserSocket.handle_error/2` answers), Phoenix frames
(`phx_join`, `heartbeat`, `phx_leave`, `access_token`, broadcast), subscribing a channel's
and the idle timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web
from loguru import logger

from sandbox.realtime.channels import Channel, Connection, _push_system, _start_subscribe
from sandbox.realtime.state import REALTIME_STATE, RealtimeState
from sandbox.realtime.subscriptions import PgBinding, SubscriptionError, binding_id, parse_binding

PHOENIX_TOPIC = "phoenix"


def _verify(state: RealtimeState, token: str) -> dict[str, Any]:
    """Claims of a valid token; raise `_AuthError(code, message)` as Realtime words it."""
    try:
        claims = dict(state.verify(token))
    except Exception as exc:
        text = str(exc).lower()
        if "expired" in text:
            raise _AuthError("expired_token", "Token has expired") from None
        if "signature" in text:
            raise _AuthError("signature_error", "Failed to validate JWT signature") from None
        if "role" in text or "claim" in text:
            raise _AuthError(
                "missing_claims", "Fields `role` and `exp` are required in JWT"
            ) from None
        raise _AuthError("token_malformed", "The token provided is not a valid JWT") from None
    if "role" not in claims or "exp" not in claims:
        raise _AuthError("missing_claims", "Fields `role` and `exp` are required in JWT")
    return claims


class _AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _websocket(request: web.Request) -> web.StreamResponse:
    state = request.app[REALTIME_STATE]
    if not state.accepting:
        state.rejected_handshakes += 1
        return _json_error(503, "Realtime is restarting, please standby")
    vsn = request.query.get("vsn", "1.0.0")
    if not (vsn.startswith("1.") or vsn.startswith("2.")):
        return _json_error(
            403, f'The client\'s requested transport version "{vsn}" is not supported'
        )
    token = request.headers.get("x-api-key") or request.query.get("apikey")
    if not token:
        state.rejected_handshakes += 1
        return _json_error(401, "API key is missing")
    try:
        claims = _verify(state, token)
    except _AuthError as exc:
        state.rejected_handshakes += 1
        return _json_error(401, exc.message)
    state.handshakes += 1

    ws = web.WebSocketResponse(
        autoping=True, compress=False, receive_timeout=state.idle_timeout, max_msg_size=5_000_000
    )
    await ws.prepare(request)
    conn = Connection(ws=ws, request=request, vsn=vsn, token=token, claims=claims)
    state.connections.add(conn)
    writer = asyncio.create_task(_writer(conn))
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = _decode(conn, msg.data)
            except (ValueError, TypeError, KeyError):
                logger.debug("realtime: malformed websocket message ignored")
                continue
            await _handle(state, conn, *frame)
    except TimeoutError:
        logger.debug("realtime: closing idle websocket")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        conn.closed = True
        for ch in list(conn.channels.values()):
            _close_channel(state, ch)
        state.connections.discard(conn)
        with contextlib.suppress(asyncio.QueueFull):
            conn.outbox.put_nowait(None)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
    return ws


async def _writer(conn: Connection) -> None:
    while True:
        frame = await conn.outbox.get()
        if frame is None or conn.ws.closed:
            return
        try:
            await conn.ws.send_str(frame)
        except (ConnectionResetError, RuntimeError):
            return


def _decode(conn: Connection, text: str) -> tuple[str | None, str | None, str, str, Any]:
    data = json.loads(text)
    if isinstance(data, list):
        join_ref, ref, topic, event, payload = data
    else:
        join_ref = data.get("join_ref")
        ref = data.get("ref")
        topic = data["topic"]
        event = data["event"]
        payload = data.get("payload")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise TypeError("topic and event must be strings")
    return (
        None if join_ref is None else str(join_ref),
        None if ref is None else str(ref),
        topic,
        event,
        payload if payload is not None else {},
    )


async def _handle(
    state: RealtimeState,
    conn: Connection,
    join_ref: str | None,
    ref: str | None,
    topic: str,
    event: str,
    payload: Any,
) -> None:
    if topic == PHOENIX_TOPIC and event == "heartbeat":
        conn.reply(PHOENIX_TOPIC, ref, "ok", {})
        return
    existing = conn.channels.get(topic)
    if event == "phx_join":
        if existing is not None:
            # Phoenix: shut the old channel down, answer the new join, then push phx_close for
            # the old join (it arrives after the reply).
            _close_channel(state, existing)
            del conn.channels[topic]
            await _join(state, conn, join_ref, ref, topic, payload)
            conn.push(topic, "phx_close", {}, existing.join_ref, existing.join_ref)
        else:
            await _join(state, conn, join_ref, ref, topic, payload)
        return
    if existing is None:
        if event == "phx_leave":
            conn.reply(topic, ref, "ok", {}, join_ref)
        else:
            conn.reply(topic, ref, "error", {"reason": "unmatched topic"}, join_ref)
        return
    if join_ref is not None and existing.join_ref is not None and join_ref != existing.join_ref:
        return  # a stale message for an earlier join of this topic
    if event == "phx_leave":
        conn.reply(topic, ref, "ok", {}, existing.join_ref)
        _close_channel(state, existing)
        del conn.channels[topic]
        conn.push(topic, "phx_close", {}, existing.join_ref, existing.join_ref)
    elif event == "access_token":
        await _access_token(state, existing, payload)
    elif event == "broadcast" and isinstance(payload, dict):
        state._broadcast(existing, payload)
        if existing.broadcast_ack:
            conn.reply(topic, ref, "ok", {}, existing.join_ref)
    # presence and anything else: accepted and ignored, like handle_in/3's catch-all


async def _join(
    state: RealtimeState,
    conn: Connection,
    join_ref: str | None,
    ref: str | None,
    topic: str,
    payload: Any,
) -> None:
    def error(reason: str) -> None:
        conn.reply(topic, ref, "error", {"reason": reason}, join_ref)

    if not topic.startswith("realtime:"):
        conn.reply(topic, ref, "error", {"reason": "unmatched topic"}, join_ref)
        return
    if topic == "realtime:":
        error("TopicNameRequired: You must provide a topic name")
        return
    params = payload if isinstance(payload, dict) else {}
    token = params.get("access_token") or params.get("user_token")
    if not isinstance(token, str) or token.startswith("sb_"):
        token = conn.token
    try:
        claims = _verify(state, token)
    except _AuthError as exc:
        code = "MalformedJWT" if exc.code == "token_malformed" else "InvalidJWTToken"
        if exc.code == "signature_error":
            code = "JwtSignatureError"
        error(f"{code}: {exc.message}")
        return
    config = params.get("config") if isinstance(params.get("config"), dict) else {}
    assert isinstance(config, dict)
    raw_changes = config.get("postgres_changes") or []
    if not isinstance(raw_changes, list):
        raw_changes = []
    bindings: list[PgBinding] = []
    invalid: str | None = None
    reply_changes: list[dict[str, Any]] = []
    for entry in raw_changes:
        if not isinstance(entry, dict):
            continue
        try:
            b = parse_binding(entry)
        except SubscriptionError as exc:
            invalid = invalid or str(exc)
            b = PgBinding(binding_id(entry), dict(entry), "*", "", "", (), None)
        bindings.append(b)
        reply_changes.append({**entry, "id": b.id})
    broadcast = config.get("broadcast") if isinstance(config.get("broadcast"), dict) else {}
    assert isinstance(broadcast, dict)
    ch = Channel(
        topic=topic,
        join_ref=join_ref,
        conn=conn,
        claims=claims,
        access_token=token,
        bindings=bindings,
        broadcast_self=bool(broadcast.get("self")),
        broadcast_ack=bool(broadcast.get("ack")),
    )
    conn.channels[topic] = ch
    state._register_topic(ch)
    conn.reply(topic, ref, "ok", {"postgres_changes": reply_changes}, join_ref)
    if invalid is not None:
        _push_system(ch, "postgres_changes", "error", invalid)
    elif bindings:
        _start_subscribe(state, ch, delay=0.0)


async def _access_token(state: RealtimeState, ch: Channel, payload: Any) -> None:
    token = payload.get("access_token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or token.startswith("sb_") or token == ch.access_token:
        return
    try:
        claims = _verify(state, token)
    except _AuthError as exc:
        _push_system(ch, "system", "error", exc.message)
        _close_channel(state, ch)
        ch.conn.channels.pop(ch.topic, None)
        ch.conn.push(ch.topic, "phx_close", {}, ch.join_ref, ch.join_ref)
        return
    ch.access_token = token
    ch.claims = claims
    if ch.bindings:
        ch.subscribed = False
        _start_subscribe(state, ch, delay=0.0)


def _close_channel(state: RealtimeState, ch: Channel) -> None:
    ch.closed = True
    ch.subscribed = False
    if ch.subscribe_task is not None and not ch.subscribe_task.done():
        ch.subscribe_task.cancel()
    state._unregister_topic(ch)
