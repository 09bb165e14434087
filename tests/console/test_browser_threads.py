"""Threads and polls in the console, in a real browser (headless Chromium) against the sandbox
and a running worker.

A generated thread arrives in the open inbox with every part in order, each with its count by
X's rules; a part is edited (the count follows), a change X would refuse is refused by the
database's door and changes nothing, and the thread is approved as one: its parts are then on
the X stand-in in order, each a reply to the one before, exactly once. The calendar shows it
as one entry ("thread of 3", posted) that opens to its parts. A tweet with a poll shows its
options and duration in the inbox and on the calendar. At desktop and phone width (375 px),
nothing scrolls sideways and the browser logs no error; screenshots go to reports/console/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.console.conftest import SCREENSHOTS, ConsoleRun, log_in, row
from tests.waiting import wait_for
from worker.content.tweet_text import weighted_length

pytestmark = pytest.mark.timeout(240)

PARTS = [
    "Advisory locks in Postgres, a short thread 🧵",
    "They are keyed by numbers you choose: two ints or one bigint.",
    "Release them, or end the session, and the next waiter gets it.",
]
EDITED = "Keys are numbers you pick 🔑 (docs: https://www.postgresql.org/docs/current/explicit-locking.html)"


def status(conn: psycopg.Connection, row_id: int) -> str:
    return str(
        row(conn, "select status from public.scheduled_tweets where id = %s", row_id)["status"]
    )


async def no_sideways_scroll(page: Any) -> int:
    return int(
        await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


async def _text_is(locator: Any, expected: str) -> bool:
    return (await locator.inner_text()) == expected


async def test_a_generated_thread_edited_approved_and_posted_in_order(
    page: Any, console_run: ConsoleRun
) -> None:
    run, conn, base, x = console_run, console_run.conn, console_run.base, console_run.stack.x
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    conn.execute(
        "update public.configs set value = value || '{\"require_approval\": true}'"
        " where key = 'generation'"
    )
    await log_in(page, base)
    for text in PARTS:
        run.stack.openai.queue_chat(
            {"text": text, "alt_text": "A padlock on a database", "image_prompt": "a padlock"}
        )
    thread = int(
        row(
            conn,
            "insert into public.scheduled_tweets (topic, thread_parts, with_image)"
            " values ('advisory locks', 3, true) returning id",
        )["id"]
    )

    # It arrives live (no reload), every part in order, each with X's count.
    item = page.locator(f"#item-thread-{thread}")
    await item.wait_for(state="visible", timeout=60_000)
    assert status(conn, thread) == "awaiting_approval"
    assert "Thread" in await item.locator("h2").inner_text()
    assert "of 3 parts" in await item.locator("h2").inner_text()
    boxes = item.locator("textarea")
    assert await boxes.count() == 3
    assert [await boxes.nth(i).input_value() for i in range(3)] == PARTS
    counters = item.locator(".count output")
    assert [await counters.nth(i).inner_text() for i in range(3)] == [
        str(weighted_length(t)) for t in PARTS
    ]
    labels = [await item.locator(".part label").nth(i).inner_text() for i in range(3)]
    assert labels[0].startswith("Part 1 of 3") and "with the image" in labels[0]
    assert labels[1:] == ["Part 2 of 3", "Part 3 of 3"]
    image = item.locator("img")
    await wait_for(lambda: image.evaluate("i => i.complete && i.naturalWidth > 0"), timeout=10)

    # Edit part 2: the count follows X's rules (the URL counts 23, the emoji 2).
    second = item.get_by_label("Part 2 of 3")
    await second.fill(EDITED)
    await wait_for(
        lambda: _text_is(counters.nth(1), str(weighted_length(EDITED))),
        timeout=5,
        message="part 2's count",
    )
    assert weighted_length(EDITED) < len(EDITED)  # X's count, not the characters typed
    await page.screenshot(path=str(SCREENSHOTS / "inbox-thread-desktop.png"), full_page=True)

    # Part 3 the same as part 1: the database's door refuses it (X refuses a duplicate post),
    # and nothing is approved or saved, part 2's edit included (one transaction).
    third = item.get_by_label("Part 3 of 3")
    await third.fill(PARTS[0])
    await item.get_by_role("button", name="Approve").click()
    error = item.locator(".item-error")
    await error.wait_for(state="visible")
    assert "thread parts 1 and 3 are the same text" in await error.inner_text()
    after = row(conn, "select status, thread from public.scheduled_tweets where id = %s", thread)
    assert (after["status"], after["thread"]) == ("awaiting_approval", PARTS)
    assert len(run.errors) == 1 and "422" in run.errors[0], run.errors
    run.errors.clear()

    # Put part 3 back and approve the thread as one: posted part by part, in order, once each.
    await third.fill(PARTS[2])
    await item.get_by_role("button", name="Approve").click()
    await item.wait_for(state="detached")
    await wait_for(lambda: status(conn, thread) == "posted", timeout=60, message="thread posted")
    tweets = sorted(x.posted_tweets(), key=lambda t: int(t.id))
    assert [t.source_text for t in tweets] == [PARTS[0], EDITED, PARTS[2]]
    assert tweets[0].referenced_tweets in (None, [])
    assert tweets[1].referenced_tweets == [{"type": "replied_to", "id": tweets[0].id}]
    assert tweets[2].referenced_tweets == [{"type": "replied_to", "id": tweets[1].id}]
    done = row(conn, "select * from public.scheduled_tweets where id = %s", thread)
    assert done["thread_tweet_ids"] == [t.id for t in tweets]
    assert done["edited_at"] is not None and done["thread"] == [PARTS[0], EDITED, PARTS[2]]
    part_ids = [
        r[0]
        for r in conn.execute(
            "select id from public.scheduled_tweets where thread_of = %s order by thread_position",
            (thread,),
        ).fetchall()
    ]

    # The calendar: one entry for the thread (no entry per part), opening to its parts.
    await page.get_by_role("link", name="Calendar").click()
    entry = page.locator(f"#post-{thread}")
    await entry.wait_for()
    line = await entry.locator(".post-line").inner_text()
    assert "thread of 3" in line and "posted" in line
    for part_id in part_ids:
        assert await page.locator(f"#post-{part_id}").count() == 0
    summary = entry.locator(".thread-parts summary")
    assert "3 parts, 3 posted" in await summary.inner_text()
    await summary.click()
    for position, (text, tweet) in enumerate(
        zip([PARTS[0], EDITED, PARTS[2]], tweets, strict=True), start=1
    ):
        shown = entry.locator(f"#part-{thread}-{position}")
        assert text in await shown.inner_text() and "posted" in await shown.inner_text()
        link = await shown.get_by_role("link").get_attribute("href")
        assert link == f"https://x.com/i/web/status/{tweet.id}"
    day_counts = await page.locator(".day.today .day-counts").inner_text()
    assert "1 posted" in day_counts  # the thread counts once, not once per part
    await entry.scroll_into_view_if_needed()
    await page.screenshot(path=str(SCREENSHOTS / "calendar-thread-desktop.png"), full_page=True)

    # At phone width: a thread awaiting approval, and the calendar, without sideways scrolling.
    more = ["Vacuum, a thread: dead tuples and why they pile up.", "Autovacuum cleans them up."]
    for text in more:
        run.stack.openai.queue_chat({"text": text, "alt_text": "", "image_prompt": ""})
    waiting = int(
        row(
            conn,
            "insert into public.scheduled_tweets (topic, thread_parts) values ('vacuum', 2)"
            " returning id",
        )["id"]
    )
    await wait_for(lambda: status(conn, waiting) == "awaiting_approval", timeout=60)
    await page.set_viewport_size({"width": 375, "height": 812})
    for name in ("inbox", "calendar"):
        await page.goto(f"{base}/{name}")
        if name == "inbox":
            await page.locator(f"#item-thread-{waiting} textarea").nth(1).wait_for()
        else:
            await page.locator(f"#post-{thread} .thread-parts summary").click()
        assert await no_sideways_scroll(page) <= 0, f"{name} scrolls sideways at 375 px"
        await page.screenshot(path=str(SCREENSHOTS / f"{name}-thread-mobile.png"), full_page=True)
    assert run.errors == [], "\n".join(run.errors)


async def test_a_poll_shows_its_options_and_duration(page: Any, console_run: ConsoleRun) -> None:
    run, conn, base = console_run, console_run.conn, console_run.base
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    conn.execute(
        "update public.configs set value = value || '{\"require_approval\": true}'"
        " where key = 'generation'"
    )
    await log_in(page, base)
    generated = int(
        row(
            conn,
            "insert into public.scheduled_tweets (topic, with_image, poll_options,"
            " poll_duration_minutes) values ('queues', false, %s, 1440) returning id",
            ["Postgres", "Redis", "A cloud queue"],
        )["id"]
    )
    item = page.locator(f"#item-tweet-{generated}")
    await item.wait_for(state="visible", timeout=60_000)
    poll = item.locator(".poll")
    assert "Poll · open 1 day" in await poll.inner_text()
    assert await poll.locator("li").all_inner_texts() == ["Postgres", "Redis", "A cloud queue"]
    await page.screenshot(path=str(SCREENSHOTS / "inbox-poll-desktop.png"), full_page=True)

    # A written poll tomorrow, and the generated one: both show their poll on the calendar.
    tomorrow = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )
    written = int(
        row(
            conn,
            "insert into public.scheduled_tweets (content, scheduled_for, poll_options,"
            " poll_duration_minutes) values ('Tabs or spaces?', %s, %s, 90) returning id",
            tomorrow,
            ["tabs", "spaces"],
        )["id"]
    )
    await page.goto(f"{base}/calendar?view=week&start={tomorrow:%Y-%m-%d}")
    shown = page.locator(f"#post-{written} .poll")
    assert "Poll · open 90 minutes" in await shown.inner_text()
    assert await shown.locator("li").all_inner_texts() == ["tabs", "spaces"]
    await page.screenshot(path=str(SCREENSHOTS / "calendar-poll-desktop.png"), full_page=True)
    await page.goto(f"{base}/calendar?view=day&start={datetime.now(UTC):%Y-%m-%d}")
    assert "open 1 day" in await page.locator(f"#post-{generated} .poll").inner_text()

    await page.set_viewport_size({"width": 375, "height": 812})
    await page.goto(f"{base}/inbox")
    await page.locator(f"#item-tweet-{generated} .poll").wait_for()
    assert await no_sideways_scroll(page) <= 0, "the inbox scrolls sideways at 375 px"
    await page.screenshot(path=str(SCREENSHOTS / "inbox-poll-mobile.png"), full_page=True)
    assert run.errors == [], "\n".join(run.errors)
