"""report: polls posted in the window appear with their latest results, in the HTML (escaped,
one bar per option, the leader marked), in polls.csv and in the summary; polls on posts outside
the window do not."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tests.report.seed import seed_known_pattern
from tests.report.test_report import report


def _poll(
    conn: psycopg.Connection,
    tweet_id: str,
    text: str,
    posted: datetime,
    votes: list[tuple[str, int]],
    status: str,
) -> None:
    conn.execute(
        "insert into public.tweets (tweet_id, content, posted_at) values (%s, %s, %s)",
        (tweet_id, text, posted),
    )
    options = [
        {"position": i + 1, "label": label, "votes": n} for i, (label, n) in enumerate(votes)
    ]
    conn.execute(
        "insert into public.polls (poll_id, tweet_id, options, duration_minutes, end_datetime,"
        " voting_status, total_votes) values (%s, %s, %s, 60, %s, %s, %s)",
        (
            "9" + tweet_id,
            tweet_id,
            json.dumps(options),
            posted + timedelta(hours=1),
            status,
            sum(n for _, n in votes),
        ),
    )


def test_polls_in_the_report(conn: psycopg.Connection, dsn: str, tmp_path: Path) -> None:
    seed_known_pattern(conn)
    now = datetime.now(UTC)
    _poll(
        conn,
        "77001",
        "Tabs <or> spaces?",
        now - timedelta(days=2),
        [("tabs", 30), ("spaces", 90), ("<both>", 0)],
        "closed",
    )
    _poll(conn, "77002", "Old poll", now - timedelta(days=90), [("a", 5), ("b", 1)], "closed")
    code, out, err = report(dsn, tmp_path, "--json", "--since", "30d")
    assert code == 0, (out, err)
    polls = json.loads(out)["summary"]["polls"]
    assert [p["tweet_id"] for p in polls] == ["77001"]  # the 90-day-old one is outside
    (poll,) = polls
    assert poll["total_votes"] == 120
    assert poll["leading"] == "spaces"
    assert [round(o["share"], 3) for o in poll["options"]] == [0.25, 0.75, 0.0]

    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Polls</h2>" in page
    assert "Tabs &lt;or&gt; spaces?" in page and "&lt;both&gt;" in page
    assert "<both>" not in page  # escaped
    assert '<tr class="option lead"><td>spaces</td>' in page
    assert 'style="width:75.0%"' in page and "120 votes · closed" in page
    assert "Old poll" not in page

    with (tmp_path / "polls.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["votes"]) for r in rows] == [
        ("tabs", "30"),
        ("spaces", "90"),
        ("<both>", "0"),
    ]


def test_a_report_without_polls_has_no_poll_section(
    conn: psycopg.Connection, dsn: str, tmp_path: Path
) -> None:
    seed_known_pattern(conn)
    code, out, err = report(dsn, tmp_path, "--json")
    assert code == 0, (out, err)
    assert json.loads(out)["summary"]["polls"] == []
    assert "<h2>Polls</h2>" not in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not (tmp_path / "polls.csv").exists()
