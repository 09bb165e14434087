"""The console in a real browser (headless Chromium) against the sandbox and a running worker.

One operator's session, as a person would use it: log in; a generated tweet with its image
arrives in the open inbox without a reload (the doorbell rings, the page hears it); the count
follows X's rules while editing; approve, and the tweet is on the X stand-in; reject another
with the keyboard; reschedule a post on the calendar; then every page, at desktop and phone
width, rendered without a console error, with screenshots under reports/console/.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from sandbox.demo import seed_history
from tests.console.conftest import SCREENSHOTS, ConsoleRun, log_in, row
from tests.e2e.test_reply_drafts import our_post, replier
from tests.waiting import wait_for
from worker.content.tweet_text import weighted_length

pytestmark = pytest.mark.timeout(180)

PAGES = ("inbox", "calendar", "activity", "money", "alerts", "charts")


def generate(conn: psycopg.Connection, topic: str, *, with_image: bool = True) -> int:
    return int(
        row(
            conn,
            "insert into public.scheduled_tweets (topic, with_image) values (%s, %s) returning id",
            topic,
            with_image,
        )["id"]
    )


async def test_an_operators_session(page: Any, console_run: ConsoleRun) -> None:
    run, conn, base = console_run, console_run.conn, console_run.base
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    conn.execute(
        "update public.configs set value = value || '{\"require_approval\": true}'"
        " where key = 'generation'"
    )

    await page.goto(f"{base}/inbox")
    await page.screenshot(path=str(SCREENSHOTS / "login-desktop.png"))
    await log_in(page, base)
    assert await page.locator("#inbox-empty").is_visible()

    # A draft arrives while the page is open: no reload, the doorbell drives it.
    first = generate(conn, "EXPLAIN ANALYZE")
    item = page.locator(f"#item-tweet-{first}")
    await item.wait_for(state="visible", timeout=30_000)
    draft = row(conn, "select * from public.scheduled_tweets where id = %s", first)
    assert draft["status"] == "awaiting_approval" and draft["image_url"]
    feed = run.worker.mounts[0].on_ring.__self__  # type: ignore[union-attr]
    assert feed.rings >= 1  # the doorbell rang for scheduled_tweets: no fallback poll needed
    image = item.locator("img")
    assert await image.get_attribute("src") == draft["image_url"]
    assert await image.get_attribute("alt") == draft["alt_text"]
    await wait_for(
        lambda: image.evaluate("i => i.complete && i.naturalWidth > 0"), timeout=10
    )  # the image really loaded from Storage (CSP allows it, the URL works)
    assert draft["alt_text"] in await item.locator("figcaption").inner_text()
    assert await page.locator("#inbox-count").inner_text() == "1"

    # The count follows X's rules as you type: URLs 23, emoji and CJK 2.
    textarea = item.get_by_label("Text")
    counter = item.locator(".count output")
    for text in (
        "Read https://www.postgresql.org/docs/current/using-explain.html before tuning 🐘",
        "索引を使う " * 30,
        "👩🏽‍💻 ship it, then measure. example.com/x #postgres",
    ):
        await textarea.fill(text)
        expected = str(weighted_length(text))
        await wait_for(lambda e=expected: _text_is(counter, e), timeout=5, message=expected)
    assert await item.locator(".count").get_attribute("class") == "count"
    too_long = "x" * 281
    await textarea.fill(too_long)
    await wait_for(lambda: _text_is(counter, "281"), timeout=5)
    assert "over" in (await item.locator(".count").get_attribute("class") or "")
    await item.get_by_role("button", name="Approve").click()  # refused: nothing changes
    await item.locator(".item-error").wait_for(state="visible")
    assert "too long" in await item.locator(".item-error").inner_text()
    assert (
        row(conn, "select status from public.scheduled_tweets where id = %s", first)["status"]
        == "awaiting_approval"
    )
    # The browser logs the refusal (HTTP 422) as a failed request: that one, and only it.
    assert len(run.errors) == 1 and "422" in run.errors[0], run.errors
    run.errors.clear()

    # Edit and approve: posted to the X stand-in with the edited text.
    edited = "Measure first: EXPLAIN (ANALYZE, BUFFERS) tells you where the time goes. 🐘"
    await textarea.fill(edited)
    await wait_for(lambda: _text_is(counter, str(weighted_length(edited))), timeout=5)
    await page.screenshot(path=str(SCREENSHOTS / "inbox-editing-desktop.png"))
    await item.get_by_role("button", name="Approve").click()
    await item.wait_for(state="detached")
    posted = await wait_for(
        lambda: [t for t in run.stack.x.posted_tweets() if "EXPLAIN (ANALYZE" in t.text],
        timeout=30,
        message="the approved tweet on the X stand-in",
    )
    assert posted[0].text.startswith(edited)  # X appends the media link after the text
    done = await wait_for(
        lambda: [
            r
            for r in [row(conn, "select * from public.scheduled_tweets where id = %s", first)]
            if r["status"] == "posted"
        ],
        timeout=10,
        message="the row recorded as posted",
    )
    done = done[0]
    assert done["content"] == edited and done["edited_at"] is not None
    assert done["tweet_id"] == posted[0].id

    # Reject another draft with the keyboard: j selects it, r rejects it.
    second = generate(conn, "autovacuum", with_image=False)
    other = page.locator(f"#item-tweet-{second}")
    await other.wait_for(state="visible", timeout=30_000)
    await page.locator("main").click(position={"x": 5, "y": 5})  # focus off any field
    await page.keyboard.press("j")
    await page.keyboard.press("r")
    await other.wait_for(state="detached")
    assert (
        row(conn, "select status from public.scheduled_tweets where id = %s", second)["status"]
        == "rejected"
    )
    assert run.stack.x.request_count() > 0

    # Reschedule a post on the calendar.
    later = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1, hours=2)
    planned = int(
        row(
            conn,
            "insert into public.scheduled_tweets (content, scheduled_for) values (%s, %s)"
            " returning id",
            "Planned: a post about partial indexes.",
            later,
        )["id"]
    )
    await page.get_by_role("link", name="Calendar").click()
    post = page.locator(f"#post-{planned}")
    await post.get_by_text("Reschedule or cancel").click()
    moved = later + timedelta(hours=3, minutes=15)
    await post.get_by_label("New time (UTC)").fill(f"{moved:%Y-%m-%dT%H:%M}")
    await post.get_by_role("button", name="Reschedule").click()
    await page.get_by_text(f"Moved post {planned}.").wait_for()
    after = row(
        conn, "select scheduled_for, job_id from public.scheduled_tweets where id = %s", planned
    )
    assert after["scheduled_for"] == moved
    assert (
        row(conn, "select run_at from public.jobs where id = %s", after["job_id"])["run_at"]
        == moved
    )

    # Something on every page: replies and likes, engagement history, an alert.
    fan = run.stack.x.add_user("ada_writes")
    run.stack.x.add_reply(fan.username, posted[0].id, "Great tip, thanks!")
    conn.execute(
        "select public.enqueue_job('poll_mentions', '{}'::jsonb, now(), 5, 'console-poll')"
    )
    await wait_for(
        lambda: row(conn, "select count(*) as n from public.replies")["n"] >= 1, timeout=20
    )
    seed_history(conn, days=14)
    conn.execute(
        "select public.raise_alert('warning', 'quota_threshold', 'quota_threshold:posts',"
        " 'posts at 80% of the monthly cap (40 of 50)')"
    )

    third = generate(conn, "partial indexes")  # so the inbox pages show a draft too
    await wait_for(
        lambda: (
            row(conn, "select status from public.scheduled_tweets where id = %s", third)["status"]
            == "awaiting_approval"
        ),
        timeout=30,
    )

    for width, suffix in ((1280, "desktop"), (375, "mobile")):
        await page.set_viewport_size({"width": width, "height": 900 if width > 400 else 812})
        for name in PAGES:
            # The first charts page of a process imports pandas and matplotlib (seconds).
            await page.goto(f"{base}/{name}", timeout=60_000 if name == "charts" else 15_000)
            assert await page.locator("h1").count() == 1
            if name == "charts":
                await wait_for(
                    lambda: page.evaluate(
                        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
                    ),
                    timeout=60,
                )
            overflow = await page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways at {width}px ({overflow}px)"
            await page.screenshot(path=str(SCREENSHOTS / f"{name}-{suffix}.png"), full_page=True)
    assert run.errors == [], "\n".join(run.errors)

    # Logging out ends the session for every page.
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{base}/login")
    await page.goto(f"{base}/money")
    assert page.url.startswith(f"{base}/login")


async def _text_is(locator: Any, expected: str) -> bool:
    return (await locator.inner_text()) == expected


async def test_reply_drafts_in_the_inbox(page: Any, console_run: ConsoleRun) -> None:
    """Mentions become reply drafts that arrive in the open inbox, showing the post they answer;
    one is edited and approved (one reply on X, under the mention, with the edited text), the
    other given new text, saved, then rejected (no reply, ever: one reply per interaction)."""
    run, conn, base, x = console_run, console_run.conn, console_run.base, console_run.stack.x
    run.stack.openai.set_chat_responder(replier)
    conn.execute("update public.x_account set user_id = %s where id = 1", (x.me.id,))
    conn.execute(
        "update public.configs set value = value || '{\"enabled\": true}' where key = 'conversation'"
    )
    await log_in(page, base)
    assert await page.locator("#inbox-empty").is_visible()
    feed = run.worker.mounts[0].on_ring.__self__  # type: ignore[union-attr]
    rings = feed.rings

    ours = our_post(conn, x, "Partial indexes keep a queue's claim query small.")
    ada = x.add_user("ada_asks")
    question = x.add_reply(ada.id, ours.id, "does that hold with a million finished jobs?")
    troll = x.add_user("loud_lee")
    heckle = x.add_reply(troll.id, ours.id, "nobody needs a queue in Postgres lol")
    conn.execute("select public.enqueue_job('poll_mentions')")

    def draft_for(reply_id: str) -> dict[str, Any]:
        return row(conn, "select * from public.reply_drafts where reply_id = %s", reply_id)

    await wait_for(
        lambda: row(conn, "select count(*) as n from public.reply_drafts")["n"] == 2,
        timeout=30,
        message="two drafts",
    )
    first, second = draft_for(question.id), draft_for(heckle.id)
    item = page.locator(f"#item-reply-{first['id']}")
    await item.wait_for(state="visible", timeout=30_000)  # live: no reload
    await page.locator(f"#item-reply-{second['id']}").wait_for(state="visible")
    # reply_drafts rings the doorbell (nothing else watched has changed since the login).
    await wait_for(lambda: feed.rings > rings, timeout=10, message="a ring for reply_drafts")
    assert "to @ada_asks" in await item.locator("h2").inner_text()
    answered = await item.locator("blockquote.answers").inner_text()
    assert question.text in answered and "@ada_asks wrote" in answered
    textarea = item.get_by_label("Text")
    assert await textarea.input_value() == first["content"]
    assert await page.locator("#inbox-count").inner_text() == "2"
    await page.screenshot(path=str(SCREENSHOTS / "inbox-replies-desktop.png"))

    edited = "It does: finished jobs leave the partial index, so the claim never sees them."
    await textarea.fill(edited)
    await wait_for(
        lambda: _text_is(item.locator(".count output"), str(weighted_length(edited))), timeout=5
    )
    await item.get_by_role("button", name="Approve").click()
    await item.wait_for(state="detached")
    (reply,) = await wait_for(
        lambda: [t for t in x.posted_tweets() if t.referenced_tweets], timeout=20, message="reply"
    )
    assert reply.referenced_tweets == [{"type": "replied_to", "id": question.id}]
    assert reply.text == f"@ada_asks {edited}"
    await wait_for(lambda: draft_for(question.id)["status"] == "posted", timeout=10)
    assert draft_for(question.id)["tweet_id"] == reply.id

    # Save new text for the other draft (it stays in the inbox), then reject it after all.
    other = page.locator(f"#item-reply-{second['id']}")
    kinder = "Postgres queues are a fine fit for many teams; what would you use instead?"
    await other.get_by_label("Text").fill(kinder)
    await other.get_by_role("button", name="Save text").click()
    await page.get_by_text(f"Saved the new text of reply {second['id']}.").wait_for(
        state="attached"
    )  # announced to screen readers
    saved = draft_for(heckle.id)
    assert (saved["status"], saved["content"]) == ("awaiting_approval", kinder)
    assert saved["edited_at"] is not None
    await other.get_by_role("button", name="Reject").click()
    await other.wait_for(state="detached")
    assert draft_for(heckle.id)["status"] == "rejected"
    await page.locator("#inbox-empty").wait_for(state="visible")
    # A second approval of the rejected draft, as a stale page would send it, is refused.
    token = await page.locator("meta[name=csrf-token]").get_attribute("content")
    status, body = await page.evaluate(
        """async ([url, token]) => {
            const r = await fetch(url, {method: "POST", headers: {"Accept": "application/json"},
                body: new URLSearchParams({action: "approve", csrf_token: token})});
            return [r.status, await r.json()];
        }""",
        [f"{base}/inbox/reply/{second['id']}", token],
    )
    assert status == 422 and "rejected" in body["error"], (status, body)
    assert [t for t in x.posted_tweets() if t.referenced_tweets] == [reply]
    run.errors[:] = [e for e in run.errors if "422" not in e]  # the refused request, logged
    assert run.errors == [], "\n".join(run.errors)
