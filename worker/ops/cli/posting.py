"""Schedule, generate, approve, reject and cancel tweets (scheduled_tweets rows)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from worker.content.tweet_text import (
    MAX_WEIGHTED_LENGTH,
    TRANSFORMED_URL_LENGTH,
    TweetTextError,
    measure,
    validate_tweet_text,
    weighted_length,
)
from worker.ops.cli.app import (
    EXIT_USAGE,
    TIME_HELP,
    DatabaseUrl,
    JsonFlag,
    app,
    console,
    format_when,
    operating,
    parse_time_option,
    print_json,
)


@app.command()
def schedule(
    text: Annotated[str, typer.Argument(help="The exact text to post (X's 280 weighted chars).")],
    at: Annotated[str | None, typer.Option("--at", help=TIME_HELP)] = None,
    reply_to: Annotated[
        str | None,
        typer.Option(
            "--reply-to",
            help="Post it as a reply to this post id. On self-serve X access the post must have "
            "summoned the account (be in `replies`: a mention or reply).",
        ),
    ] = None,
    poll: Annotated[
        list[str] | None,
        typer.Option(
            "--poll",
            help="A poll option (repeat for 2 to 4 options of at most 25 characters).",
        ),
    ] = None,
    poll_minutes: Annotated[
        int | None,
        typer.Option("--poll-minutes", help="How long the poll stays open: 5 to 10080 minutes."),
    ] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Schedule a written tweet: inserts a scheduled_tweets row (the job follows by trigger).
    Prints what X will bill for it (a URL makes a post cost $0.20 instead of $0.015)."""
    when = parse_time_option(at)
    with operating(database_url_opt) as op:
        row = op.schedule(
            text, when, reply_to=reply_to, poll_options=poll, poll_minutes=poll_minutes
        )
    if json_out:
        print_json(row)
        return
    price = row.get("price_usd")
    cost = "" if price is None else f" · X bills ${price:,.3f} ({row['operation']})"
    console.print(
        f"scheduled tweet [bold]{row['id']}[/] for {format_when(row['scheduled_for'])} "
        f"(job {row['job_id']}, post_tweet): {row['weighted_length']}/{MAX_WEIGHTED_LENGTH} "
        f"weighted characters{cost}"
    )
    if row.get("operation") == "post_with_url":
        console.print(
            "[yellow]it contains a URL: X bills a post with a link at the URL price "
            "(configs.pricing.x.post_with_url)[/]"
        )


@app.command()
def thread(
    parts: Annotated[
        list[str], typer.Argument(help="The parts, in order (2 to 25; each at most 280 weighted).")
    ],
    at: Annotated[str | None, typer.Option("--at", help=TIME_HELP)] = None,
    reply_to: Annotated[
        str | None,
        typer.Option("--reply-to", help="Part 1 answers this post (see `schedule --reply-to`)."),
    ] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Schedule a thread: each part posted in order as a reply to the one before, each exactly
    once (a scheduled_tweets row with `thread`; one row per part follows)."""
    when = parse_time_option(at)
    with operating(database_url_opt) as op:
        row = op.thread(parts, when, reply_to=reply_to)
    if json_out:
        print_json(row)
        return
    ids = ", ".join(str(p["id"]) for p in row["parts"])
    console.print(
        f"scheduled thread [bold]{row['id']}[/] of {len(row['parts'])} parts for "
        f"{format_when(row['scheduled_for'])} (part rows {ids}; part 1 queued, each next one "
        "when the one before is posted)"
    )


@app.command()
def count(
    text: Annotated[str, typer.Argument(help="The text to count.")],
    json_out: JsonFlag = False,
) -> None:
    """Count TEXT as X counts it (280 weighted characters: URLs 23, CJK and emoji 2).

    The same count the worker checks before posting. Exits 2 when X would refuse the text.
    """
    text = text.strip()  # as `schedule` stores it
    result = measure(text)
    try:
        validate_tweet_text(text)
        refusal = None
    except TweetTextError as exc:
        refusal = str(exc)
    if json_out:
        print_json(
            {
                "weighted_length": result.weighted_length,
                "max": MAX_WEIGHTED_LENGTH,
                "urls": result.url_count,
                "emoji": result.emoji_count,
                "accepted": refusal is None,
                "refusal": refusal,
            }
        )
    else:
        verdict = "fits" if refusal is None else f"refused: {escape(refusal)}"
        console.print(
            f"{result.weighted_length}/{MAX_WEIGHTED_LENGTH} weighted characters "
            f"({result.url_count} URL{'' if result.url_count == 1 else 's'} at "
            f"{TRANSFORMED_URL_LENGTH}, {result.emoji_count} emoji): "
            f"{verdict}",
            soft_wrap=True,
        )
    if refusal is not None:
        raise typer.Exit(EXIT_USAGE)


@app.command()
def generate(
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="What to write about (default: one of the persona's topics)."),
    ] = None,
    image: Annotated[
        bool | None,
        typer.Option(
            "--image/--no-image",
            help="Generate an image with the tweet (default: the generation config's `image`).",
            show_default=False,
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help=TIME_HELP)] = None,
    thread_parts: Annotated[
        int | None,
        typer.Option("--thread", help="Write a thread of this many parts (2 to 25) instead."),
    ] = None,
    json_out: JsonFlag = False,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Schedule a generated tweet: the worker writes it (and an image) and posts it at TIME."""
    when = parse_time_option(at)
    with operating(database_url_opt) as op:
        row = op.generate(topic, image, when, thread_parts=thread_parts)
    if json_out:
        print_json(row)
        return
    image_note = " with an image" if row["with_image"] else ""
    what = f"thread of {row['thread_parts']} parts" if row.get("thread_parts") else "tweet"
    console.print(
        f"scheduled generated {what} [bold]{row['id']}[/] about {escape(repr(row['topic']))}"
        f"{image_note} for {format_when(row['scheduled_for'])} "
        f"(job {row['job_id']}, generate_tweet)"
    )


def _move_command(tweet_id: int, action: str, url: str | None) -> dict[str, Any]:
    with operating(url) as op:
        fn = {"approve": op.approve, "reject": op.reject, "cancel": op.cancel}[action]
        return fn(tweet_id)


IdArg = Annotated[int, typer.Argument(help="The scheduled_tweets id.", min=1)]


@app.command()
def approve(tweet_id: IdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Approve a generated tweet or thread awaiting approval; it is posted at its scheduled
    time (a thread part by part, in order)."""
    row = _move_command(tweet_id, "approve", database_url_opt)
    if not row["changed"]:
        console.print(f"tweet {row['id']} was already approved")
        return
    if row.get("thread_size"):
        console.print(
            f"approved thread [bold]{row['id']}[/] of {row['thread_size']} parts: part 1 posts at "
            f"{format_when(row['scheduled_for'])}, each next one when the one before is posted"
        )
        return
    console.print(
        f"approved tweet [bold]{row['id']}[/]: posting at {format_when(row['scheduled_for'])} "
        f"(job {row['job_id']})"
    )


@app.command()
def reject(tweet_id: IdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Reject a generated tweet awaiting approval; it will never be posted."""
    row = _move_command(tweet_id, "reject", database_url_opt)
    if not row["changed"]:
        console.print(f"tweet {row['id']} was already rejected")
        return
    console.print(f"rejected tweet [bold]{row['id']}[/]: it will not be posted")


@app.command()
def cancel(tweet_id: IdArg, database_url_opt: DatabaseUrl = None) -> None:
    """Cancel a scheduled tweet that has not started posting (its queued job is cancelled too)."""
    row = _move_command(tweet_id, "cancel", database_url_opt)
    if not row["changed"]:
        console.print(f"tweet {row['id']} was already cancelled")
        return
    console.print(f"cancelled tweet [bold]{row['id']}[/]")


@app.command()
def edit(
    tweet_id: IdArg,
    text: Annotated[str, typer.Argument(help="The new text (X's 280 weighted characters).")],
    part: Annotated[
        int | None,
        typer.Option("--part", min=1, help="Of a generated thread: the part (1..N) to change."),
    ] = None,
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Change the text of a generated tweet, or of one part of a generated thread, awaiting
    approval (then approve or reject it)."""
    with operating(database_url_opt) as op:
        if part is None:
            row = op.edit(tweet_id, text)
        else:
            thread = op.edit_thread(tweet_id, {part: text})
    if part is None:
        console.print(
            f"tweet [bold]{row['id']}[/] now reads: {escape(row['content'])}", soft_wrap=True
        )
        return
    edited = thread["parts"][part - 1]
    console.print(
        f"thread [bold]{thread['id']}[/] part {part} of {len(thread['parts'])} now reads "
        f"({edited['weighted_length']}/{MAX_WEIGHTED_LENGTH}): {escape(edited['content'])}",
        soft_wrap=True,
    )


@app.command()
def show(tweet_id: IdArg, json_out: JsonFlag = False, database_url_opt: DatabaseUrl = None) -> None:
    """One scheduled tweet or thread: status, time, its text (a thread's every part, in order)
    with X's weighted count, and its poll."""
    with operating(database_url_opt) as op:
        row = op.scheduled_tweet(tweet_id)
        is_thread = row["thread"] is not None or row["thread_parts"] is not None
        if is_thread:
            row = op.thread_view(tweet_id)
    if json_out:
        print_json(row)
        return
    what = f"thread of {len(row['parts']) or row['thread_parts']} parts" if is_thread else "tweet"
    console.print(
        f"{what} [bold]{row['id']}[/] ({row['status']}) for {format_when(row['scheduled_for'])}"
        + (f", about {escape(repr(row['topic']))}" if row.get("topic") else ""),
        soft_wrap=True,
    )
    texts = (
        [(p["thread_position"], p["status"], p["content"]) for p in row["parts"]]
        if is_thread
        else [(None, row["status"], row["content"])]
    )
    for position, status, content in texts:
        label = f"  part {position} ({status})" if position else "  text"
        if content is None:
            console.print(f"{label}: not written yet")
            continue
        console.print(
            f"{label} ({weighted_length(content)}/{MAX_WEIGHTED_LENGTH}): {escape(content)}",
            soft_wrap=True,
        )
    if row.get("poll_options"):
        console.print(
            f"  poll: {escape(' / '.join(row['poll_options']))}, open "
            f"{row['poll_duration_minutes']} minutes"
        )
    if row.get("error"):
        console.print(f"  [red]{escape(row['error'])}[/]")


@app.command()
def reschedule(
    tweet_id: IdArg,
    at: Annotated[str, typer.Option("--at", help=TIME_HELP.replace(" Default: now.", ""))],
    database_url_opt: DatabaseUrl = None,
) -> None:
    """Move a scheduled tweet to another time (its queued job moves with it)."""
    when = parse_time_option(at)
    assert when is not None
    with operating(database_url_opt) as op:
        row = op.reschedule(tweet_id, when)
    console.print(f"tweet [bold]{row['id']}[/] now posts {format_when(row['scheduled_for'])}")
