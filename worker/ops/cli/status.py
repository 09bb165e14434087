"""`chirpbase status` and `chirpbase doctor`: what the account is doing, and what is wrong."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from worker.logs import redact

if TYPE_CHECKING:
    pass
from worker.ops.cli.app import (
    EXIT_FAILURE,
    DatabaseUrl,
    JobStatus,
    JsonFlag,
    app,
    console,
    describe_row,
    format_when,
    operating,
    print_json,
    shorten,
)


@app.command()
def doctor(
    json_out: JsonFlag = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, max=120, help="Seconds each check may take."),
    ] = 10.0,
) -> None:
    """Check env, database, migrations, pg_cron, Realtime, Storage, X and OpenAI; print fixes.

    One line per check (✓ or ✗) with the fix under each failure. Exit 0 when every check passes,
    1 otherwise. Reads the same environment and .env as the worker.
    """
    from worker.ops.doctor import run_doctor

    report = asyncio.run(run_doctor(limit=timeout))
    if json_out:
        print_json(report.as_json())
    else:
        width = max(len(c.title) for c in report.checks)
        for c in report.checks:
            mark = {"ok": "[green]✓[/]", "fail": "[bold red]✗[/]", "skip": "[yellow]–[/]"}[c.status]
            console.print(f"{mark} {c.title:<{width}}  {escape(redact(c.detail))}", soft_wrap=True)
            if not c.ok and c.fix:
                console.print(f"  {'':<{width}}  [dim]fix:[/] {escape(c.fix)}", soft_wrap=True)
        passed = sum(c.ok for c in report.checks)
        verdict = "[green]all good[/]" if report.ok else "[bold red]needs attention[/]"
        console.print(f"{passed}/{len(report.checks)} checks passed: {verdict}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def status(
    json_out: JsonFlag = False,
    health_url: Annotated[
        str | None,
        typer.Option(
            "--health-url",
            envvar="CHIRPBASE_HEALTH_URL",
            help="A worker's health endpoint, e.g. http://localhost:8080/health "
            "(env CHIRPBASE_HEALTH_URL). Skipped when unset; shown as unreachable when down.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100, help="Rows of upcoming and recent posts.")
    ] = 5,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Queue, upcoming and recent posts, quota and budget, open alerts, worker health."""
    from worker.ops.probe import fetch_health

    with operating(database_url_opt) as op:
        snap = op.status_snapshot(limit=limit)
    snap["worker"] = fetch_health(health_url) if health_url else None
    if json_out:
        print_json(snap)
        return
    _render_status(snap)


def _render_status(snap: dict[str, Any]) -> None:
    from rich.progress_bar import ProgressBar

    # Queue by kind and status
    statuses = [s.value for s in JobStatus]
    queue = Table(title="Queue", title_justify="left", expand=False)
    queue.add_column("kind")
    for st in statuses:
        queue.add_column(st, justify="right")
    queue.add_column("max lag", justify="right")
    for kind, counts in sorted(snap["queue"].items()):
        lag = snap["queue_max_lag_s"].get(kind)
        cells = [
            Text(str(counts.get(st, "")), style="bold red" if st == "dead" else "")
            for st in statuses
        ]
        queue.add_row(kind, *cells, "-" if lag is None else f"{lag:.0f}s")
    if not snap["queue"]:
        queue.add_row("(empty)", *[""] * (len(statuses) + 1))
    console.print(queue)

    upcoming = Table(title="Upcoming posts", title_justify="left")
    for col in ("id", "status", "when", "what"):
        upcoming.add_column(col)
    for r in snap["upcoming"]:
        upcoming.add_row(
            str(r["id"]), r["status"], format_when(r["scheduled_for"]), Text(describe_row(r))
        )
    if not snap["upcoming"]:
        upcoming.add_row("", "", "", "nothing scheduled")
    console.print(upcoming)

    recent = Table(title="Recent posts", title_justify="left")
    for col, just in (
        ("posted", "left"),
        ("tweet", "left"),
        ("likes", "right"),
        ("RTs", "right"),
        ("replies", "right"),
        ("impr.", "right"),
    ):
        recent.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in snap["recent"]:
        recent.add_row(
            format_when(r["posted_at"]),
            Text(shorten(r["content"], 50)),
            *(
                ("-" if r[k] is None else str(r[k]))
                for k in ("likes", "retweets", "replies", "impressions")
            ),
        )
    if not snap["recent"]:
        recent.add_row("", "nothing posted yet", "", "", "", "")
    console.print(recent)

    quota = Table(title="Quota and budget (this month)", title_justify="left")
    quota.add_column("resource")
    quota.add_column("use", width=30)
    quota.add_column("used", justify="right")
    quota.add_column("cap", justify="right")
    for q in snap["quota"]:
        cap, used, pct = q["cap"], q["used"], q["percent"]
        money = q["resource"] in ("openai_usd", "spend_usd")
        fmt = (lambda v: f"${v:,.2f}") if money else (lambda v: f"{v:,.0f}")
        if cap:
            style = "red" if pct >= 100 else "yellow" if pct >= 100 * q["alert_threshold"] else ""
            bar: Any = ProgressBar(
                total=cap, completed=min(used, cap), width=30, complete_style=style or "green"
            )
            cap_text = f"{fmt(cap)} ({pct:.0f}%)"
        else:
            bar, cap_text = Text("no cap", style="dim"), "-"
        quota.add_row(q["resource"], bar, fmt(used), cap_text)
    b = snap["budget"]
    projected = "-" if b["projected_usd"] is None else f"${b['projected_usd']:,.2f}"
    budget = "no budget" if not b.get("budget_usd") else f"budget ${b['budget_usd']:,.2f}"
    cycle = format_when(b["cycle_ends"]) if b.get("cycle_ends") else "month end"
    quota.caption = (
        f"access tier {b['plan'] or '?'} · spent ${b['spent_usd']:,.2f} this billing cycle "
        f"(X ${b['x_usd']:,.2f}, OpenAI ${b['openai_usd']:,.2f}; posts: {b['posts']}, "
        f"reads: {b['reads']}) · projected {projected} by {cycle} · {budget}"
    )
    console.print(quota)
    if b.get("projected_over_budget"):
        console.print(
            "[yellow]the projection passes the budget: work will wait once it is spent[/]"
        )
    _render_spend(snap.get("spend_by_operation") or [])
    _render_access(snap.get("access") or {}, snap.get("stats_read"))

    if snap["alerts"]:
        alerts = Table(title="Open alerts", title_justify="left")
        for col in ("level", "kind", "message", "seen"):
            alerts.add_column(col)
        for a in snap["alerts"]:
            colour = {"critical": "bold red", "warning": "yellow"}.get(a["level"], "")
            seen = f"{format_when(a['last_seen_at'])} ×{a['occurrences']}"
            alerts.add_row(Text(a["level"], style=colour), a["kind"], Text(a["message"]), seen)
        console.print(alerts)
    else:
        console.print("[green]no open alerts[/]")

    w = snap.get("worker")
    if w is None:
        console.print("worker health: [dim]not checked (--health-url or CHIRPBASE_HEALTH_URL)[/]")
    elif not w["reachable"]:
        console.print(
            f"worker health: [yellow]unreachable[/] at {escape(w['url'])} ({escape(w['error'])})"
        )
    else:
        body = w.get("body") or {}
        state = body.get("status", "?")
        colour = {"ok": "green", "degraded": "yellow"}.get(state, "red")
        db = body.get("database", {}) or {}
        bell = body.get("doorbell", {}) or {}
        console.print(
            f"worker health: [{colour}]{escape(str(state))}[/] (HTTP {w['http_status']}) "
            f"worker {escape(str(body.get('worker_id', '?')))} · up {body.get('uptime_s', '?')}s "
            f"· database {'up' if db.get('up') else 'down'} · doorbell "
            f"{_doorbell(bell)} · running jobs {body.get('running_jobs', '?')}"
        )


def _render_spend(rows: list[dict[str, Any]]) -> None:
    """This cycle's calls by priced operation (configs.pricing), dearest first."""
    priced = [r for r in rows if r["cost_usd"] or r["operation"]]
    if not priced:
        return
    table = Table(title="Spend by operation (this billing cycle)", title_justify="left")
    for col, just in (("endpoint", "left"), ("operation", "left"), ("calls", "right"),
                      ("billed units", "right"), ("cost", "right")):  # fmt: skip
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in priced[:12]:
        table.add_row(
            r["endpoint"], r["operation"] or "-", f"{r['calls']:,}", f"{r['units']:,}",
            f"${r['cost_usd']:,.3f}",
        )  # fmt: skip
    console.print(table)


def _render_access(access: dict[str, Any], stats_read: dict[str, Any] | None) -> None:
    """What the configured X access tier allows (SQL x_capabilities), one line each."""
    caps = access.get("capabilities") or []
    if caps:
        console.print(f"X access tier [bold]{escape(str(access.get('tier')))}[/]:")
        for c in caps:
            mark = "[green]✓[/]" if c["available"] else "[red]✗[/]"
            why = "" if c["available"] else f" [dim]({escape(c['notice'] or '')})[/]"
            console.print(f"  {mark} {escape(c['label'])}{why}", soft_wrap=True)
    if stats_read and stats_read.get("source"):
        est = stats_read.get("estimated_usd") or {}
        console.print(
            f"stats read via {escape(str(stats_read['source']).replace('_', ' '))} "
            f"(estimated ${float(est.get('owned_timeline', 0)):,.3f} by the owned timeline, "
            f"${float(est.get('lookup', 0)):,.3f} by lookups; X bills each post once a day)"
        )


def _doorbell(bell: dict[str, Any]) -> str:
    if not bell.get("enabled"):
        return "off"
    return "connected" if bell.get("connected") else "down"
