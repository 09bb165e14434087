"""report: PNG charts, a self-contained HTML page and CSVs from tweets and stats."""

from __future__ import annotations

import csv
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from tests.report.seed import BEST_HOUR, seed_bulk, seed_known_pattern
from worker.ops.cli import EXIT_USAGE, app
from worker.report import ReportError, parse_since

CHARTS = (
    "engagement_over_time.png",
    "best_times_heatmap.png",
    "image_vs_no_image.png",
    "top_tweets.png",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def report(dsn: str, out: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["report", "--out", str(out), "--database-url", dsn, *args], env={"COLUMNS": "200"}
    )
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_report_on_known_data(conn: psycopg.Connection, dsn: str, tmp_path: Path) -> None:
    import json

    seeded = seed_known_pattern(conn)
    conn.execute("select public.record_x_usage('tweets', 'post_with_url', posts => 1)")
    conn.execute(
        "select public.record_api_usage(endpoint => 'openai:chat', operation => 'text',"
        " estimated_cost_usd => 0.05)"
    )
    code, out, err = report(dsn, tmp_path, "--json")
    assert code == 0, (out, err)
    payload = json.loads(out)
    s = payload["summary"]

    # The known answers.
    assert s["best_hour"] == BEST_HOUR == 14
    assert s["best_weekday"] == "Wednesday"
    assert s["best_slot"] == {
        "weekday": "Wednesday",
        "hour": 14,
        "mean_engagements": 80.0,
        "tweets": 1,
    }
    assert s["tweets"] == 20 and s["tweets_with_stats"] == 20
    assert s["top_tweets"][0]["content"] == seeded.top_content
    assert s["top_tweets"][0]["engagements"] == 80
    # Mean units per hour: 14:00 -> 5 + 0.5 (Wed) + 0.5 (image) = 6 units = 60 engagements.
    assert s["best_hour_mean_engagements"] == pytest.approx(60.0)
    # Image tweets: +1 unit each -> more engagements than text-only tweets.
    assert s["image"]["With image"]["tweets"] == s["image"]["Text only"]["tweets"] == 10
    assert s["image_lift"] > 1
    # Engagement rate: pooled engagements / impressions (about 1 % by construction).
    assert s["engagement_rate"] == pytest.approx(s["engagements"] / s["impressions"])
    assert 0.009 < s["engagement_rate"] < 0.011
    assert s["stats_in_window"] == seeded.stats == 60

    # PNG charts.
    for name in CHARTS:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 20_000, name

    # Self-contained HTML with every chart inlined and the headline numbers.
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(CHARTS)
    assert not re.search(r'(src|href)="(https?:)?//', html), "external asset in the report"
    assert "<link" not in html and "<script" not in html
    assert "14:00 UTC" in html and "Wednesday" in html
    assert "EXPLAIN before you index" in html

    # CSV exports.
    tweets = read_csv(tmp_path / "tweets.csv")
    assert len(tweets) == 20
    top_row = max(tweets, key=lambda r: int(r["engagements"]))
    assert (top_row["weekday"], top_row["hour"], top_row["has_image"]) == (
        "Wednesday",
        "14",
        "True",
    )
    daily = read_csv(tmp_path / "daily.csv")
    assert list(daily[0]) == [
        "day",
        "tweets_posted",
        "likes",
        "retweets",
        "replies",
        "engagements",
        "impressions",
        "engagement_rate",
    ]
    assert sum(int(r["tweets_posted"]) for r in daily) == 20
    # Daily gains add up to each tweet's latest (cumulative) stats.
    assert sum(float(r["engagements"]) for r in daily) == s["engagements"]
    best_times = read_csv(tmp_path / "best_times.csv")
    assert len(best_times) == 20  # 4 weekdays x 5 hours, one tweet each

    assert set(payload["files"]) >= {"html", "tweets_csv", "daily_csv", "summary_json"}
    assert json.loads((tmp_path / "summary.json").read_text())["best_hour"] == 14
    # Spend so far this billing cycle, as status and /health show it.
    spend = s["spend"]
    assert (spend["x_usd"], spend["openai_usd"], spend["spent_usd"]) == (0.2, 0.05, 0.25)
    assert spend["budget_usd"] == 50 and spend["cycle_ends"]
    page = (tmp_path / "report.html").read_text()
    assert "Spend (billing cycle)" in page and "$0.25" in page


def test_report_human_output_lists_the_files(
    conn: psycopg.Connection, dsn: str, tmp_path: Path
) -> None:
    seed_known_pattern(conn)
    code, out, err = report(dsn, tmp_path)
    assert code == 0, (out, err)
    assert "20 tweets" in out and "best hour 14:00 UTC" in out and "best day Wednesday" in out
    for name in (*CHARTS, "report.html", "tweets.csv", "daily.csv"):
        assert name in out


def test_report_on_an_empty_database(dsn: str, tmp_path: Path) -> None:
    code, out, err = report(dsn, tmp_path)
    assert code == 0, (out, err)
    assert "nothing to report yet" in out
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Nothing to report yet" in html
    assert not list(tmp_path.glob("*.png"))
    assert read_csv(tmp_path / "tweets.csv") == []
    assert (tmp_path / "tweets.csv").read_text().startswith("tweet_id,posted_at,")


def test_report_window_excludes_older_tweets(
    conn: psycopg.Connection, dsn: str, tmp_path: Path
) -> None:
    import json

    seed_known_pattern(conn)  # all posted 7 to 14 days ago
    code, out, _err = report(dsn, tmp_path, "--since", "3d", "--json")
    assert code == 0
    s = json.loads(out)["summary"]
    assert s["tweets"] == 0 and s["best_hour"] is None


def test_report_refuses_a_bad_since(dsn: str, tmp_path: Path) -> None:
    code, _out, err = report(dsn, tmp_path, "--since", "last spring")
    assert code == EXIT_USAGE
    assert "cannot read --since 'last spring'" in err


def test_parse_since() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_since("30d", now) == now - timedelta(days=30)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("all", now).year == 1970
    with pytest.raises(ReportError):
        parse_since("30 days ago", now)


def test_report_on_100k_stats_rows(conn: psycopg.Connection, dsn: str, tmp_path: Path) -> None:
    import json

    rows = seed_bulk(conn, tweets=1000, snapshots=100)
    conn.execute("analyze public.stats")
    started = time.perf_counter()
    code, out, err = report(dsn, tmp_path, "--json")
    elapsed = time.perf_counter() - started
    print(
        f"\nreport on {rows} stats rows: {elapsed:.2f}s (build {json.loads(out)['summary']['seconds']}s)"
    )
    assert code == 0, (out, err)
    s = json.loads(out)["summary"]
    assert s["stats_in_window"] == rows == 100_000
    assert s["tweets"] == 1000 and s["tweets_with_stats"] == 1000
    assert len(read_csv(tmp_path / "tweets.csv")) == 1000
    for name in CHARTS:
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)


def test_report_on_a_few_sparse_rows(conn: psycopg.Connection, dsn: str, tmp_path: Path) -> None:
    """Tweets without stats, stats without impressions, counters kept in tweets.engagement."""
    import json

    conn.execute(
        """
        insert into public.tweets (tweet_id, content, image_url, posted_at, engagement) values
          ('t1', '🎉🎉', 'https://img.example/1.png', now() - interval '2 days', '{}'),
          ('t2', 'No stats yet, costs $0', null, now() - interval '1 day', '{}'),
          ('t3', 'Counters kept by the handler', null, now() - interval '3 hours',
           '{"like_count": 4, "retweet_count": 1, "reply_count": 2, "impression_count": 70}')
        """
    )
    conn.execute(
        "insert into public.stats (tweet_id, likes, retweets, replies, impressions, collected_at)"
        " values ('t1', 5, 1, 0, null, now() - interval '1 day')"
    )
    code, out, err = report(dsn, tmp_path, "--json")
    assert code == 0, (out, err)
    s = json.loads(out)["summary"]
    assert s["tweets"] == 3 and s["tweets_with_stats"] == 1
    assert (s["likes"], s["retweets"], s["replies"], s["impressions"]) == (9, 2, 2, 70)
    assert s["engagement_rate"] == pytest.approx(7 / 70)  # only t3 has impressions
    assert s["top_tweets"][0]["content"] == "Counters kept by the handler"
    for name in CHARTS:
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC), name
    tweets = {r["tweet_id"]: r for r in read_csv(tmp_path / "tweets.csv")}
    assert tweets["t1"]["impressions"] == "" and tweets["t1"]["engagement_rate"] == ""


def test_report_with_stats_but_no_new_tweets(
    conn: psycopg.Connection, dsn: str, tmp_path: Path
) -> None:
    """Old tweets still gaining engagement: the daily series is there, per-tweet charts are not."""
    import json

    conn.execute(
        "insert into public.tweets (tweet_id, content, posted_at) values ('old', 'An old hit', now() - interval '90 days')"
    )
    conn.execute(
        "insert into public.stats (tweet_id, likes, retweets, replies, impressions, collected_at) values"
        " ('old', 10, 0, 0, 100, now() - interval '40 days'), ('old', 25, 2, 1, 400, now() - interval '1 day')"
    )
    code, out, err = report(dsn, tmp_path, "--json")
    assert code == 0, (out, err)
    payload = json.loads(out)
    assert payload["empty"] is False and payload["summary"]["tweets"] == 0
    daily = read_csv(tmp_path / "daily.csv")
    # Only what was gained inside the window counts: 25+2+1 - 10 = 18 engagements.
    assert sum(int(r["engagements"]) for r in daily) == 18
    assert (tmp_path / "engagement_over_time.png").exists()
    assert not (tmp_path / "top_tweets.png").exists()
    assert "Engagement over time" in (tmp_path / "report.html").read_text(encoding="utf-8")
