"""`chirpbase webhook register|status|remove`: mentions and replies pushed by X within seconds.

The X Activity API delivers the account's `post.mention.create` and `post.reply.create` events to
the x-webhook edge function; polling stays on beside it as the safety net. These commands talk to
X with the worker's credentials (X_BEARER_TOKEN for webhooks, the account's OAuth 1.0a tokens
for its subscriptions) and record what they did in the database (worker/conversation/webhook.py).
`status` also prices both ways of ingesting at the account's current volume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from worker.ops.cli.app import (
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    DatabaseUrl,
    JsonFlag,
    app,
    console,
    database_url,
    fail,
    format_when,
    load_settings,
    print_json,
)

if TYPE_CHECKING:
    from worker.clients.x import XClient
    from worker.clients.x.activity import XActivity
    from worker.conversation.ingest_costs import IngestionCosts, IngestionPrices
    from worker.db import Database

T = TypeVar("T")

webhook_app = typer.Typer(
    help="X Activity API webhook: mentions and replies pushed to the x-webhook edge function.",
    no_args_is_help=True,
)
app.add_typer(webhook_app, name="webhook")

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The deployed x-webhook function (https, no port). "
        "Default: <SUPABASE_URL>/functions/v1/x-webhook.",
    ),
]


def _run(dsn_opt: str | None, work: Callable[[XActivity, Database, XClient], Awaitable[T]]) -> T:
    """Run ``work`` with an X client and the database, mapping failures to exit codes."""
    import psycopg
    import psycopg_pool

    from worker.clients.x import XAuthError, XClient, XError
    from worker.clients.x.activity import XActivity
    from worker.conversation.webhook import WebhookError
    from worker.db import Database

    settings = load_settings()
    dsn = database_url(dsn_opt)

    async def main() -> T:
        x = XClient.from_settings(settings)
        db = Database(dsn, min_size=1, max_size=2, name="chirpbase-cli")
        try:
            await db.open(wait_s=5)
            return await work(XActivity(x), db, x)
        finally:
            await db.close()
            await x.aclose()

    try:
        return asyncio.run(main())
    except WebhookError as exc:
        fail(str(exc), EXIT_FAILURE)
    except XAuthError as exc:
        fail(f"X refused the credentials or the permission: {exc}", EXIT_FAILURE)
    except XError as exc:
        fail(f"X: {exc}", EXIT_FAILURE)
    except (psycopg_pool.PoolTimeout, psycopg.OperationalError) as exc:
        fail(f"database unreachable: {exc}", EXIT_UNAVAILABLE)


async def _account_id(db: Database, x: XClient) -> str:
    row = await db.fetchrow("webhook_registration")
    if row and row.get("user_id"):
        return str(row["user_id"])
    me = await x.me()  # the worker records it on its first start; until then, ask X once
    await db.execute("set_account_identity", {"user_id": me.id, "username": me.username})
    return me.id


@webhook_app.command("register")
def register_cmd(
    url: UrlOption = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Delete this X app's other webhooks (and their subscriptions) first: X allows "
            "one webhook per app on pay-per-use.",
        ),
    ] = False,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Register the x-webhook URL with X and subscribe the account to mentions and replies.

    Safe to run again: what X already has is reused (an invalid webhook is re-checked), nothing
    is created twice.
    """
    from worker.conversation.webhook import default_url, register, url_problem

    target = url or default_url(load_settings().supabase_url)
    problem = url_problem(target)
    if problem:
        fail(f"cannot register {target}: {problem} (pass --url)", EXIT_USAGE)

    async def work(api: XActivity, db: Database, x: XClient) -> Any:
        user_id = await _account_id(db, x)
        return await register(api, db, url=target, user_id=user_id, replace=replace)

    done = _run(database_url_opt, work)
    if json_out:
        print_json(
            {
                "webhook": vars(done.webhook),
                "subscriptions": [vars(s) for s in done.subscriptions],
                "actions": done.actions,
            }
        )
        return
    for action in done.actions:
        console.print(f"[green]✓[/] {escape(action)}")
    if not done.changed:
        console.print("already registered: nothing to do")
    subs = ", ".join(f"{s.event_type} ({s.id})" for s in done.subscriptions)
    console.print(
        f"webhook {done.webhook.id} → {escape(done.webhook.url)} "
        f"({'valid' if done.webhook.valid else 'invalid'}); subscriptions: {subs}",
        soft_wrap=True,
    )


@webhook_app.command("status")
def status_cmd(json_out: JsonFlag = False, database_url_opt: DatabaseUrl = None) -> None:
    """Webhook health (valid, subscriptions, last delivery) and its cost next to polling.

    X is asked how the webhook is; what webhook and polling cost per month is computed at the
    account's current volume. Exit 1 when a registered webhook needs care.
    """
    from worker.conversation import ingest_costs as costs
    from worker.conversation.webhook import health

    async def work(api: XActivity, db: Database, x: XClient) -> Any:
        state, volume = await health(api, db)
        return state, volume, _prices(await db.fetchval("pricing_config"))

    state, volume, prices = _run(database_url_opt, work)
    polls = costs.cron_runs_per_day(volume.get("poll_cron") or "* * * * *")
    compare = {
        owned: costs.compare_ingestion_costs(
            float(volume.get("mentions_per_day") or 0), polls, prices=prices, owned_reads=owned
        )
        for owned in (True, False)
    }
    if json_out:
        print_json(
            {
                "webhook": state.as_json(),
                "volume": volume,
                "costs": compare[True].as_json(),
                "costs_if_not_app_owner": compare[False].as_json(),
            }
        )
    else:
        _render(state, volume, compare[True], compare[False])
    if state.state not in ("ok", "not_registered"):
        raise typer.Exit(EXIT_FAILURE)


def _prices(raw: Any) -> IngestionPrices:
    """X's prices from the `pricing` row (configs.pricing.x); X's published ones when the row
    is absent or invalid (the worker refuses an invalid row the same way)."""
    from pydantic import ValidationError

    from worker.config.models import PricingConfig
    from worker.conversation.ingest_costs import IngestionPrices

    try:
        x = PricingConfig.model_validate(raw or {}).x
    except ValidationError:
        x = PricingConfig().x
    return IngestionPrices(
        activity_event=x.activity_event, owned_read=x.owned_read, post_read=x.post_read
    )


def _render(
    state: Any, volume: dict[str, Any], owned: IngestionCosts, other: IngestionCosts
) -> None:
    colour = {"ok": "green", "not_registered": "dim"}.get(state.state, "bold red")
    console.print(f"webhook: [{colour}]{state.state}[/] · {escape(state.message)}", soft_wrap=True)
    if state.webhook_id:
        valid = {True: "valid", False: "[bold red]invalid[/]", None: "unknown"}[state.valid]
        console.print(f"  {state.webhook_id} → {escape(state.url or '')} ({valid})", soft_wrap=True)
        console.print(f"  last delivery: {format_when(state.last_event_at)}")
        for sub in state.subscriptions:
            console.print(f"  subscribed: {sub.event_type} ({sub.id}) for user {sub.user_id}")
        if state.polled_first_since_registered:
            console.print(
                f"  polling found {state.polled_first_since_registered} mention(s) before the "
                "webhook since it was registered"
            )

    per_day, window = owned.mentions_per_day, float(volume.get("window_days") or 0)
    table = Table(
        title=f"Ingesting {per_day:,.1f} mentions/day (last {window:.0f} days), "
        f"{owned.polls_per_day:,.0f} polls/day: cost per month",
        title_justify="left",
    )
    table.add_column("path")
    table.add_column("per month", justify="right")
    table.add_column("how")
    wait = (
        "-" if owned.poll_wait_s is None else f"new mentions seen after ~{owned.poll_wait_s:.0f} s"
    )
    table.add_row(
        "polling",
        f"${owned.polling_usd:,.2f}",
        f"owned reads ${owned.prices.owned_read:g}/post; {owned.poll_requests:,} requests "
        f"(empty polls are free); {wait}",
    )
    table.add_row(
        "webhook",
        f"${owned.webhook_usd:,.2f}",
        f"${owned.prices.activity_event:g}/event; pushed within seconds",
    )
    table.add_row(
        "webhook + polling",
        f"${owned.webhook_and_polling_usd:,.2f}",
        "both (polling kept as the safety net reads each mention again)",
    )
    table.caption = (
        f"If the account does not own the X app, polls are post reads "
        f"(${other.prices.post_read:g}/post): polling ${other.polling_usd:,.2f}, "
        f"webhook + polling ${other.webhook_and_polling_usd:,.2f}."
    )
    console.print(table)
    if owned.cheaper == "same":
        console.print("both paths cost the same at this volume")
    else:
        gap = abs(owned.polling_usd - owned.webhook_usd)
        console.print(f"{owned.cheaper} is cheaper by ${gap:,.2f}/month at this volume")


@webhook_app.command("remove")
def remove_cmd(
    webhook_id: Annotated[
        str | None,
        typer.Option(
            "--webhook-id",
            help="Remove this webhook of the X app instead of the one chirpbase registered.",
        ),
    ] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Delete the subscriptions and the webhook `register` created (nothing left at X)."""
    from worker.conversation.webhook import remove

    if webhook_id is not None and not webhook_id.isdigit():
        fail(f"--webhook-id must be X's numeric id, got {webhook_id!r}", EXIT_USAGE)

    async def work(api: XActivity, db: Database, x: XClient) -> list[str]:
        return await remove(api, db, webhook_id=webhook_id)

    actions = _run(database_url_opt, work)
    if json_out:
        print_json({"actions": actions})
        return
    for action in actions:
        console.print(f"[green]✓[/] {escape(action)}")
    if not actions:
        console.print("no webhook registered: nothing to remove")
