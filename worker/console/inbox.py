"""The inbox: everything awaiting a person's decision, with approve, edit and reject.

Items are generated tweets awaiting approval (`kind` "tweet"), generated threads (`kind`
"thread", every part in order, each edited on its own) and reply drafts (`kind` "reply", with
the post they answer); the list, the routes (`/inbox/{kind}/{id}`) and the template are keyed by
kind, each kind with its own decide function. Every decision is an `Operator` call, the same the
CLI makes: a tweet's edit goes through `edit_scheduled_tweet` (X's exact count, then the
database's), its approval and rejection through the status change of `chirpbase approve|reject`;
a thread's edits through `edit_thread_part` (`chirpbase edit ID TEXT --part N`), approved with
them in one transaction, so it is approved as shown or not at all, then posted part by part in
order; a reply draft's through `approve_reply_draft`, `edit_reply_draft` and
`reject_reply_draft` (`chirpbase replies approve|reject`), so an approved reply is posted once,
at once, by post_tweet, and an expired one is refused with the reason.

The weighted character count shown while editing comes from `/api/tweet-length`, which runs
the worker's own counter (worker/content/tweet_text.py): the number on screen is the number
the worker will check before posting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from worker.console.core import CONSOLE, error_page, operator_error_status, wants_json
from worker.content.tweet_text import MAX_WEIGHTED_LENGTH, measure
from worker.ops.operator import Operator, OperatorError, Refused

PAGE_SIZE = 25
MAX_COUNTED_TEXT = 10_000
DONE_MESSAGES = {
    "tweet": {
        "approved": "Approved tweet {id}: it will be posted at its scheduled time.",
        "saved": "Saved the new text of tweet {id}.",
        "rejected": "Rejected tweet {id}: it will not be posted.",
    },
    "thread": {
        "approved": "Approved thread {id}: its parts will be posted in order, at its time.",
        "saved": "Saved the new parts of thread {id}.",
        "rejected": "Rejected thread {id}: none of its parts will be posted.",
    },
    "reply": {
        "approved": "Approved reply {id}: it is being posted now, under the post it answers.",
        "saved": "Saved the new text of reply {id}.",
        "rejected": "Rejected reply {id}: it will not be posted, and that post gets no other.",
    },
}


def _page(request: web.Request) -> int:
    try:
        return max(1, int(request.query.get("page", "1")))
    except ValueError:
        return 1


def _load(page: int) -> Callable[[Operator], dict[str, Any]]:
    def load(op: Operator) -> dict[str, Any]:
        data = op.inbox(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        for item in data["items"]:
            item["length"] = measure(item.get("content") or "").weighted_length
            item["parts"] = [
                {"position": position, "content": text, "length": measure(text).weighted_length}
                for position, text in enumerate(item.get("thread") or [], start=1)
            ]
        return data

    return load


async def inbox_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    page = _page(request)
    try:
        data = await console.call(_load(page))
    except OperatorError as exc:
        return error_page(request, exc)
    done = request.query.get("done", "")
    messages = DONE_MESSAGES.get(request.query.get("kind", "tweet"), {})
    notice = None
    if done in messages and request.query.get("id", "").isdigit():
        notice = messages[done].format(id=request.query["id"])
    return console.render(
        request,
        "inbox.html",
        current="inbox",
        items=data["items"],
        total=data["total"],
        page=page,
        pages=max(1, -(-data["total"] // PAGE_SIZE)),
        max_length=MAX_WEIGHTED_LENGTH,
        notice=notice,
        waiting=data["total"],
    )


async def inbox_items(request: web.Request) -> web.StreamResponse:
    """The list alone (the live inbox swaps it in)."""
    console = request.app[CONSOLE]
    try:
        data = await console.call(_load(_page(request)))
    except OperatorError as exc:
        return error_page(request, exc)
    return console.render(
        request,
        "_inbox_items.html",
        items=data["items"],
        total=data["total"],
        max_length=MAX_WEIGHTED_LENGTH,
    )


Form = Mapping[str, Any]


def _content(form: Form) -> str | None:
    content = form.get("content")
    return content if isinstance(content, str) else None


def _decide_tweet(tweet_id: int, action: str, form: Form) -> Callable[[Operator], Any]:
    content = _content(form)

    def decide(op: Operator) -> dict[str, Any]:
        if action == "reject":
            return op.reject(tweet_id)
        current = op.scheduled_tweet(tweet_id)
        if content is not None and content.strip() != (current.get("content") or "").strip():
            op.edit(tweet_id, content)
        elif action == "save":
            return {**current, "changed": False}
        return op.approve(tweet_id) if action == "approve" else op.scheduled_tweet(tweet_id)

    return decide


def _decide_reply(draft_id: int, action: str, form: Form) -> Callable[[Operator], Any]:
    content = _content(form)

    def decide(op: Operator) -> dict[str, Any]:
        if action == "reject":
            return op.reject_reply(draft_id)
        current = op.reply_draft(draft_id)
        changed = content is not None and content.strip() != (current.get("content") or "").strip()
        if action == "approve":
            return op.approve_reply(draft_id, content if changed else None)
        return op.edit_reply(draft_id, content) if changed and content else current

    return decide


def _form_parts(form: Form) -> dict[int, str]:
    """The parts a thread's form sent (`part-1` ... `part-25`), by position."""
    parts = {}
    for name, value in form.items():
        position = name.removeprefix("part-")
        if position != name and position.isdigit() and isinstance(value, str):
            parts[int(position)] = value
    return parts


def _decide_thread(thread_id: int, action: str, form: Form) -> Callable[[Operator], Any]:
    sent = _form_parts(form)

    def decide(op: Operator) -> dict[str, Any]:
        if action == "reject":
            return op.reject(thread_id)
        view = op.thread_view(thread_id)
        current = {p["thread_position"]: p["content"] or "" for p in view["parts"]}
        changed = {
            position: text
            for position, text in sent.items()
            if text.strip() != current.get(position, "").strip()
        }
        if action == "approve":
            return op.approve_thread(thread_id, changed)
        if not changed:
            return {**view, "changed": False}
        return op.edit_thread(thread_id, changed)

    return decide


DECIDERS = {"tweet": _decide_tweet, "thread": _decide_thread, "reply": _decide_reply}
ACTIONS = {"approve": "approved", "save": "saved", "reject": "rejected"}


async def decide(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    kind = request.match_info["kind"]
    decider = DECIDERS.get(kind)
    if decider is None:
        raise web.HTTPNotFound(text=f"no inbox items of kind {kind!r}")
    item_id = int(request.match_info["id"])
    form = await request.post()
    action = str(form.get("action") or "")
    try:
        if action not in ACTIONS:
            raise Refused(f"unknown action {action!r}: approve, save or reject")
        row = await console.call(decider(item_id, action, form))
    except OperatorError as exc:
        if wants_json(request):
            return web.json_response(
                {"ok": False, "error": str(exc)}, status=operator_error_status(exc)
            )
        return error_page(request, exc)
    done = ACTIONS[action]
    if wants_json(request):
        return web.json_response(
            {
                "ok": True,
                "id": item_id,
                "kind": kind,
                "status": row.get("status"),
                "message": DONE_MESSAGES[kind][done].format(id=item_id),
            }
        )
    raise web.HTTPSeeOther(console.url("inbox", done=done, kind=kind, id=item_id))


async def tweet_length(request: web.Request) -> web.StreamResponse:
    """X's weighted length of `text`, by the worker's counter."""
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text='send JSON: {"text": "..."}') from None
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise web.HTTPBadRequest(text='send JSON: {"text": "..."}')
    if len(text) > MAX_COUNTED_TEXT:
        raise web.HTTPRequestEntityTooLarge(MAX_COUNTED_TEXT, len(text))
    m = measure(text)
    return web.json_response(
        {
            "weighted_length": m.weighted_length,
            "max": MAX_WEIGHTED_LENGTH,
            "remaining": MAX_WEIGHTED_LENGTH - m.weighted_length,
            "valid": m.valid and bool(text.strip()),
            "urls": m.url_count,
            "emoji": m.emoji_count,
            "invalid_characters": m.has_invalid_characters,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/inbox", inbox_page, name="inbox")
    app.router.add_get("/inbox/items", inbox_items, name="inbox_items")
    app.router.add_post(r"/inbox/{kind:[a-z_]+}/{id:\d{1,18}}", decide, name="decide")
    app.router.add_post("/api/tweet-length", tweet_length, name="tweet_length")
