"""`chirpbase replies list|show|approve|reject`: the reply drafts that wait for a person.

Every draft answers one post that summoned the account; approving it posts it as a reply to that
post (once, like any post); rejecting it means the post gets no answer (one reply per
interaction). The rules are the database's (SQL approve_reply_draft, reject_reply_draft): an
expired draft cannot be approved, an opted-out author is never answered.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from worker.content.tweet_text import MAX_WEIGHTED_LENGTH, weighted_length
from worker.ops.cli.app import (
    DatabaseUrl,
    JsonFlag,
    app,
    console,
    format_when,
    operating,
    print_json,
    shorten,
)

replies_app = typer.Typer(
    help="Reply drafts to people who summoned the account: list, approve (post), reject.",
    no_args_is_help=True,
)
app.add_typer(replies_app, name="replies")


class DraftStatus(StrEnum):
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    posted = "posted"
    failed = "failed"
    rejected = "rejected"
    expired = "expired"
    cancelled = "cancelled"
    all = "all"


DraftIdArg = Annotated[int, typer.Argument(help="The reply draft id (reply_drafts.id).", min=1)]
_COLOURS = {
    "awaiting_approval": "yellow",
    "approved": "cyan",
    "posted": "green",
    "failed": "red",
    "rejected": "dim",
    "expired": "dim",
    "cancelled": "dim",
}


def _who(row: dict[str, Any]) -> str:
    return f"@{row['author_username']}" if row.get("author_username") else str(row["author_id"])


@replies_app.command("list")
def replies_list(
    status_opt: Annotated[
        DraftStatus,
        typer.Option("--status", help="Drafts in this status (default: awaiting approval)."),
    ] = DraftStatus.awaiting_approval,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most N drafts.")] = 20,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """List reply drafts, newest first, with the post each answers."""
    status = None if status_opt is DraftStatus.all else status_opt.value
    with operating(database_url_opt) as op:
        rows = op.reply_drafts(status, limit=limit)
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"Reply drafts ({len(rows)})", title_justify="left")
    for col in ("id", "status", "to", "their post", "reply", "expires"):
        table.add_column(col, justify="right" if col == "id" else "left")
    for r in rows:
        table.add_row(
            str(r["id"]),
            Text(r["status"], style=_COLOURS.get(r["status"], "")),
            _who(r),
            Text(shorten(r["in_reply_to_text"], 40)),
            Text(shorten(r["content"], 50)),
            format_when(r["expires_at"]) if r["status"] == "awaiting_approval" else "-",
        )
    console.print(table)
    if not rows and status == "awaiting_approval":
        console.print("no reply drafts await approval")


@replies_app.command("show")
def replies_show(
    draft_id: DraftIdArg, json_out: JsonFlag = False, database_url_opt: DatabaseUrl = None
) -> None:
    """One draft: the post it answers, the conversation it was written from, the reply."""
    with operating(database_url_opt) as op:
        row = op.reply_draft(draft_id)
    if json_out:
        print_json(row)
        return
    console.print(
        f"reply draft [bold]{row['id']}[/] ({row['status']}) to {_who(row)}, "
        f"post {row['reply_id']}",
        soft_wrap=True,
    )
    context = row.get("context") or {}
    for label, key in (("first post", "root"), ("replying to", "parent")):
        post = context.get(key)
        if post:
            by = "the account" if post.get("ours") else post.get("author") or "someone"
            console.print(f"  {label} ({by}): {escape(shorten(post.get('text'), 200))}")
    console.print(f"  their post: {escape(row['in_reply_to_text'] or '')}", soft_wrap=True)
    console.print(
        f"  reply ({weighted_length(row['content'])}/{MAX_WEIGHTED_LENGTH}): "
        f"{escape(row['content'])}",
        soft_wrap=True,
    )
    if row["status"] == "awaiting_approval":
        console.print(f"  expires {format_when(row['expires_at'])}")
    if row.get("tweet_id"):
        console.print(f"  posted as {row['tweet_id']}")
    if row.get("error"):
        console.print(f"  [red]{escape(row['error'])}[/]")


@replies_app.command("approve")
def replies_approve(
    draft_id: DraftIdArg,
    text: Annotated[
        str | None,
        typer.Option("--text", help="Post this text instead of the draft's (X's 280 weighted)."),
    ] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Approve a reply draft: it is posted now as a reply to the post it answers."""
    with operating(database_url_opt) as op:
        row = op.approve_reply(draft_id, text)
    if json_out:
        print_json(row)
        return
    if not row["changed"]:
        console.print(f"reply draft {row['id']} was already {row['status']}")
        return
    console.print(
        f"approved reply draft [bold]{row['id']}[/]: posting it as a reply to post "
        f"{row['reply_id']} (scheduled tweet {row['scheduled_tweet_id']})",
        soft_wrap=True,
    )


@replies_app.command("reject")
def replies_reject(draft_id: DraftIdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Reject a reply draft: it is never posted, and the post it answers gets no reply."""
    with operating(database_url_opt) as op:
        row = op.reject_reply(draft_id)
    if not row["changed"]:
        console.print(f"reply draft {row['id']} was already rejected")
        return
    console.print(f"rejected reply draft [bold]{row['id']}[/]: it will not be posted")
