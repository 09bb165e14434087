"""The calendar: what is planned by day or week (UTC), with reschedule and cancel, and the
pg_cron cadence that adds generated posts (its next firings drawn on the days they fall on)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from worker.console import cron
from worker.console.core import CONSOLE, error_page, operator_error_status, wants_json
from worker.ops.operator import Operator, OperatorError, Refused
from worker.ops.when import parse_when

MOVABLE = ("pending", "generating", "awaiting_approval", "approved")
CADENCE = (
    ("generate_cron", "chirpbase-generate", "a generated tweet is scheduled"),
    ("poll_mentions_cron", "chirpbase-poll-mentions", "mentions are fetched"),
    ("collect_stats_cron", "chirpbase-collect-stats", "engagement is collected"),
)
OTHER_JOBS = {
    "chirpbase-reap-leases": "expired job leases go back to the queue",
    "chirpbase-prune": "finished jobs and old cron runs are pruned",
    "chirpbase-reconcile-usage": "quota counters are reconciled with X's usage",
    "chirpbase-evaluate-alerts": "alert rules are checked",
}
WEEK_PER_DAY = 12
DAY_PER_DAY = 200


def _start(request: web.Request, view: str) -> date:
    today = datetime.now(UTC).date()
    raw = request.query.get("start")
    try:
        start = date.fromisoformat(raw) if raw else today
    except ValueError:
        start = today
    return start - timedelta(days=start.weekday()) if view == "week" else start


def _generation_slots(schedule: dict[str, Any], start: date, days: int) -> dict[str, list[str]]:
    expr = schedule.get("generate_cron") or "0 9,13,18 * * *"
    if schedule.get("enabled") is False:
        return {}
    begin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    now = datetime.now(UTC)
    slots: dict[str, list[str]] = {}
    try:
        times = cron.occurrences(expr, max(begin, now), begin + timedelta(days=days), limit=400)
    except cron.CronError:
        return {}
    for at in times:
        slots.setdefault(at.date().isoformat(), []).append(f"{at:%H:%M}")
    return slots


def _cadence(data: dict[str, Any]) -> list[dict[str, Any]]:
    schedule = data["schedule"] or {}
    jobs = {j["jobname"]: j for j in data["cron"] or []}
    rows = []
    for key, jobname, what in CADENCE:
        expr = schedule.get(key)
        job = jobs.get(jobname)
        if job is not None:
            expr = job["schedule"]
        if key == "generate_cron" and schedule.get("enabled") is False:
            rows.append({"name": jobname, "expr": None, "what": what, "reading": "off"})
            continue
        rows.append(
            {
                "name": jobname,
                "expr": expr,
                "what": what,
                "reading": cron.describe(expr) if expr else "default",
                "active": None if job is None else job["active"],
            }
        )
    named = {name for _key, name, _what in CADENCE}
    for name, job in sorted(jobs.items()):
        if name not in named:
            what = OTHER_JOBS.get(name, "")
            rows.append(
                {
                    "name": name,
                    "expr": job["schedule"],
                    "what": what,
                    "reading": cron.describe(job["schedule"]),
                    "active": job["active"],
                }
            )
    return rows


async def calendar_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    view = "day" if request.query.get("view") == "day" else "week"
    start = _start(request, view)
    days = 1 if view == "day" else 7
    per_day = DAY_PER_DAY if view == "day" else WEEK_PER_DAY

    def load(op: Operator) -> dict[str, Any]:
        return {
            "calendar": op.calendar(start, days, per_day=per_day),
            "cadence": op.cadence(),
            "waiting": op.inbox_state()["waiting"],
        }

    try:
        data = await console.call(load)
    except OperatorError as exc:
        return error_page(request, exc)
    posts_by_day: dict[str, list[dict[str, Any]]] = {}
    for post in data["calendar"]["posts"]:
        posts_by_day.setdefault(post["day"], []).append(post)
    day_list = []
    today = datetime.now(UTC).date()
    slots = _generation_slots(data["cadence"]["schedule"] or {}, start, days)
    for i in range(days):
        d = start + timedelta(days=i)
        key = d.isoformat()
        counts = data["calendar"]["counts"].get(key, {})
        posts = posts_by_day.get(key, [])
        shown_total = sum(n for s, n in counts.items() if s not in ("cancelled",))
        entries = [{"at": p["scheduled_for"], "post": p} for p in posts]
        entries += [{"at": f"{key}T{slot}:00+00:00", "slot": slot} for slot in slots.get(key, [])]
        entries.sort(key=lambda e: (str(e["at"])[:16], "slot" in e))
        day_list.append(
            {
                "date": d,
                "key": key,
                "today": d == today,
                "posts": posts,
                "entries": entries,
                "hidden": max(0, shown_total - len(posts)),
                "counts": counts,
                "slots": slots.get(key, []),
            }
        )
    step = timedelta(days=days)
    return console.render(
        request,
        "calendar.html",
        current="calendar",
        view=view,
        start=start,
        days=day_list,
        prev_start=(start - step).isoformat(),
        next_start=(start + step).isoformat(),
        today=today.isoformat(),
        cadence=_cadence(data["cadence"]),
        cron_readable=data["cadence"]["cron"] is not None,
        movable=MOVABLE,
        waiting=data["waiting"],
        notice=_notice(request),
    )


def _notice(request: web.Request) -> str | None:
    done, ident = request.query.get("done"), request.query.get("id", "")
    if not ident.isdigit():
        return None
    return {
        "rescheduled": f"Moved post {ident}.",
        "cancelled": f"Cancelled post {ident}: it will not be posted.",
    }.get(done or "")


def _back(request: web.Request) -> str:
    """The calendar page the form came from (its view and start ride on the form's URL)."""
    console = request.app[CONSOLE]
    view = request.query.get("view") if request.query.get("view") in ("day", "week") else "week"
    start = request.query.get("start")
    try:
        start = date.fromisoformat(start).isoformat() if start else None
    except ValueError:
        start = None
    return console.url("calendar", view=view, start=start)


async def _act(request: web.Request, fn: Any, done: str) -> web.StreamResponse:
    console = request.app[CONSOLE]
    post_id = int(request.match_info["id"])
    form = await request.post()
    try:
        row = await console.call(lambda op: fn(op, post_id, form))
    except OperatorError as exc:
        if wants_json(request):
            return web.json_response(
                {"ok": False, "error": str(exc)}, status=operator_error_status(exc)
            )
        return error_page(request, exc)
    if wants_json(request):
        return web.json_response({"ok": True, "id": post_id, "row": row})
    back = _back(request)
    joiner = "&" if "?" in back else "?"
    raise web.HTTPSeeOther(f"{back}{joiner}done={done}&id={post_id}")


def _reschedule(op: Operator, post_id: int, form: Any) -> dict[str, Any]:
    when = form.get("when")
    if not isinstance(when, str) or not when.strip():
        raise Refused("give a date and time (UTC) to post at")
    return op.reschedule(post_id, parse_when(when))


def _cancel(op: Operator, post_id: int, _form: Any) -> dict[str, Any]:
    return op.cancel(post_id)


async def reschedule(request: web.Request) -> web.StreamResponse:
    return await _act(request, _reschedule, "rescheduled")


async def cancel(request: web.Request) -> web.StreamResponse:
    return await _act(request, _cancel, "cancelled")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/calendar", calendar_page, name="calendar")
    app.router.add_post(r"/calendar/{id:\d{1,18}}/reschedule", reschedule, name="reschedule")
    app.router.add_post(r"/calendar/{id:\d{1,18}}/cancel", cancel, name="cancel")
