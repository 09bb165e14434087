"""The console's pure parts: pg_cron reading, the login limiter, like outcomes, alert fixes, and
the counter the browser shows, which must be the worker's own number for any text."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from worker.alerts.fixes import FIXES
from worker.config.models import Engagement
from worker.console import cron
from worker.console.app import create_console_app
from worker.console.auth import SESSION_COOKIE, LoginLimiter, hash_password
from worker.console.core import Console, ConsoleConfig
from worker.console.data import ConsoleDB
from worker.console.overview import like_outcome
from worker.content.tweet_text import weighted_length

ROOT = Path(__file__).resolve().parents[2]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_cron_occurrences_follow_pg_cron() -> None:
    week = (at("2026-11-30T00:00"), at("2026-12-07T00:00"))  # Monday to Monday
    daily = cron.occurrences("0 9,13,18 * * *", *week)
    assert len(daily) == 21 and daily[0] == at("2026-11-30T09:00")
    weekdays = cron.occurrences("30 8 * * 1-5", *week)
    assert [d.strftime("%a %H:%M") for d in weekdays] == [
        f"{d} 08:30" for d in ("Mon", "Tue", "Wed", "Thu", "Fri")
    ]
    assert [d.day for d in cron.occurrences("0 12 * * 0,7", *week)] == [6]  # both mean Sunday
    assert len(cron.occurrences("*/15 * * * *", *week, limit=1000)) == 7 * 24 * 4
    # Both day fields restricted: either matches (the 1st of December is a Tuesday).
    either = cron.occurrences("0 6 1 * 5", *week)
    assert [d.day for d in either] == [1, 4]
    month_end = cron.occurrences("0 23 $ * *", at("2026-11-01T00:00"), at("2027-01-01T00:00"))
    assert [d.date().isoformat() for d in month_end] == ["2026-11-30", "2026-12-31"]
    assert cron.occurrences("30 seconds", *week) == []
    assert len(cron.occurrences("* * * * *", *week, limit=10)) == 10
    for bad in ("0 25 * * *", "61 * * * *", "* * *", "0 9 * * 8", "*/0 * * * *", "a b c d e"):
        with pytest.raises(cron.CronError):
            cron.occurrences(bad, *week)


def test_cron_descriptions() -> None:
    assert cron.describe("0 9,13,18 * * *") == "at 09:00, 13:00, 18:00 every day (UTC)"
    assert cron.describe("* * * * *") == "every minute (UTC)"
    assert cron.describe("0 * * * *") == "every hour at :00 (UTC)"
    assert cron.describe("0 8 * * 1-5") == "at 08:00 on Mon, Tue, Wed, Thu, Fri (UTC)"
    assert cron.describe("30 seconds") == "every 30 seconds"
    assert cron.describe("not a schedule") == "not a schedule"


def test_login_limiter_per_client_and_overall() -> None:
    limiter = LoginLimiter(per_client=3, overall=5, window_s=60)
    for _ in range(3):
        assert limiter.retry_after("a", now=0.0) is None
        limiter.failed("a", now=0.0)
    assert limiter.retry_after("a", now=10.0) == pytest.approx(50.0)
    assert limiter.retry_after("b", now=10.0) is None  # another address may still try
    limiter.failed("b", now=10.0)
    limiter.failed("c", now=10.0)
    assert limiter.retry_after("d", now=11.0) == pytest.approx(49.0)  # 5 failures in all
    assert limiter.retry_after("a", now=61.0) is None  # the window slid past them
    limiter.failed("e", now=70.0)
    limiter.succeeded("e")
    assert limiter.retry_after("e", now=70.0) is None


def test_like_outcomes_say_why() -> None:
    on = Engagement(auto_like=True)  # off unless asked: X's guidelines forbid offering it
    assert like_outcome({"liked": True}, on) == ("liked", "liked on X")
    skipped = {"like_status": "succeeded", "like_result": {"skipped": "author in skip_authors"}}
    assert like_outcome(skipped, on) == ("skipped", "author in skip_authors")
    assert like_outcome({"like_status": "queued"}, on)[0] == "waiting"
    dead = {"like_status": "dead", "like_error": "X refused the like: 403"}
    assert like_outcome(dead, on) == ("failed", "X refused the like: 403")
    assert like_outcome({"own": True}, on) == ("skipped", "the account's own post")
    off = Engagement(auto_like=False)
    assert like_outcome({}, off) == ("skipped", "auto-like is off")
    mentions_off = Engagement(auto_like=True, like_mentions=False)
    assert like_outcome({"to_our_tweet": False}, mentions_off)[1].startswith("a plain mention")
    # Off Enterprise access X has no likes at all: said before anything else.
    notice = "likes are not available on X access tier pay_per_use since 2026-04-20"
    assert like_outcome({}, on, likes_unavailable=notice) == ("skipped", notice)
    assert like_outcome({"liked": True}, on, likes_unavailable=notice)[0] == "liked"


def test_every_alert_kind_in_the_docs_has_a_fix() -> None:
    table = (ROOT / "docs" / "alerts.md").read_text()
    kinds = set(re.findall(r"^\| `([a-z_]+)` \(", table, flags=re.MULTILINE))
    assert len(kinds) >= 10
    assert kinds == set(FIXES), kinds ^ set(FIXES)
    for kind in kinds:
        assert FIXES[kind] in table, f"docs/alerts.md does not state the fix for {kind}"


def corpus(n: int = 400) -> list[str]:
    """Texts that exercise every rule: URLs with and without scheme, CJK, emoji sequences."""
    pieces = [
        "a", "Z", " ", "\n", "é", "日本", "한국어", "😀", "👩🏽‍💻", "🇯🇵", "1️⃣", "❤️", "©",
        "https://example.com/x", "example.com", "foo.jp", "foo.jp/x", "t.co", "#tag", "@user",
        "\u2014", "…", "e\u0301", "www.postgresql.org/docs", "x" * 40, "😷" * 3,
    ]  # fmt: skip
    rng = random.Random(14)
    texts = ["", "   ", "x" * 280, "x" * 281, "界" * 140, "界" * 141]
    while len(texts) < n:
        texts.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))))
    return texts


@pytest.fixture
async def client(dsn: str) -> AsyncIterator[tuple[TestClient, str, str]]:
    config = ConsoleConfig(password_hash=hash_password("x" * 12), signing_key=b"k" * 32)
    console = Console(config, ConsoleDB(dsn))
    root = web.Application()
    root.add_subapp("/console", create_console_app(console))
    async with TestClient(TestServer(root)) as c:
        cookie, session = console.signer.issue()
        yield c, cookie, console.signer.csrf_token(session)


async def test_the_counter_is_the_workers_number(
    client: tuple[TestClient, str, str],
) -> None:
    c, cookie, csrf = client
    texts = corpus()
    for text in texts:
        r = await c.post(
            "/console/api/tweet-length",
            json={"text": text},
            headers={"X-CSRF-Token": csrf},
            cookies={SESSION_COOKIE: cookie},
        )
        assert r.status == 200
        body = await r.json()
        assert body["weighted_length"] == weighted_length(text), text
        assert body["valid"] == (0 < weighted_length(text) <= 280 and bool(text.strip()))
    r = await c.post(
        "/console/api/tweet-length",
        json={"text": "x" * 10_001},
        headers={"X-CSRF-Token": csrf},
        cookies={SESSION_COOKIE: cookie},
    )
    assert r.status == 413
    r = await c.post(
        "/console/api/tweet-length",
        data="not json",
        headers={"X-CSRF-Token": csrf},
        cookies={SESSION_COOKIE: cookie},
    )
    assert r.status == 400


async def test_calendar_and_inbox_render_with_the_database_away(
    client: tuple[TestClient, str, str], dsn: str
) -> None:
    """A page says the database is unreachable (503) instead of failing with a traceback."""
    config = ConsoleConfig(password_hash=hash_password("x" * 12), signing_key=b"k" * 32)
    away = Console(config, ConsoleDB(re.sub(r":\d+/", ":1/", dsn), wait_s=0.5))
    root = web.Application()
    root.add_subapp("/console", create_console_app(away))
    async with TestClient(TestServer(root)) as c:
        cookie, _ = away.signer.issue()
        for page in ("inbox", "calendar", "money"):
            r = await c.get(f"/console/{page}", cookies={SESSION_COOKIE: cookie})
            assert r.status == 503, page
            assert "database" in (await r.text()).lower()


def test_fix_text_shows_code_and_escapes_the_rest() -> None:
    from worker.console.filters import inline_code

    shown = str(inline_code("run `chirpbase jobs retry ID` <b>now</b> & `<x>`"))
    assert shown == (
        "run <code>chirpbase jobs retry ID</code> &lt;b&gt;now&lt;/b&gt; &amp; <code>&lt;x&gt;</code>"
    )
