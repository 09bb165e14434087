"""Build the report folder: read and analyse (worker.report.analysis), then write CSVs, the
PNG charts (worker.report.charts) and the self-contained HTML page (worker.report.html).

Output, in one folder:

- `report.html`: self-contained (charts inlined as base64 PNG, inline CSS, no external assets);
- `engagement_over_time.png`, `best_times_heatmap.png`, `image_vs_no_image.png`,
  `top_tweets.png`;
- `tweets.csv` (one row per tweet), `daily.csv` (one row per UTC day), `best_times.csv`
  (weekday x hour), and `summary.json` (the headline numbers, with the billing cycle's spend so
  far and projected, X and OpenAI);
- `polls.csv` (one row per poll option, when polls were posted in the window; the HTML shows
  each poll's results too).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from worker.report import charts, html, polls
from worker.report.analysis import (
    DEFAULT_SINCE,
    WEEKDAYS,
    Analysis,
    ReportError,
    analyse,
    load,
    load_spend,
    parse_since,
    require_report_extra,
)


def default_out_dir(now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"report-{stamp}"


@dataclass
class Report:
    out_dir: Path
    files: dict[str, Path]
    summary: dict[str, Any]
    empty: bool
    seconds: float


def write_csvs(a: Analysis, out: Path) -> dict[str, Path]:
    import pandas as pd

    paths = {
        "tweets_csv": out / "tweets.csv",
        "daily_csv": out / "daily.csv",
        "best_times_csv": out / "best_times.csv",
    }
    tweets = a.tweets.copy()
    tweets["weekday"] = tweets["weekday"].map(lambda d: WEEKDAYS[int(d)])
    # Counts as integers in the files (nullable: impressions can be unknown), rates rounded.
    tweets["impressions"] = tweets["impressions"].round().astype("Int64")
    tweets["engagement_rate"] = tweets["engagement_rate"].round(6)
    tweets.to_csv(paths["tweets_csv"], index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    daily = a.daily.copy()
    for col in ("likes", "retweets", "replies", "engagements", "impressions"):
        daily[col] = pd.to_numeric(daily[col]).round().astype("Int64")
    daily["engagement_rate"] = pd.to_numeric(daily["engagement_rate"]).round(6)
    daily.to_csv(paths["daily_csv"], index=False)
    slots = a.slots.copy()
    slots["mean_engagements"] = slots["mean_engagements"].round(3)
    slots["weekday"] = slots["weekday"].map(lambda d: WEEKDAYS[int(d)])
    slots.to_csv(paths["best_times_csv"], index=False)
    return paths


def build_report(
    dsn: str,
    *,
    since: str | datetime = DEFAULT_SINCE,
    out_dir: Path | str | None = None,
    now: datetime | None = None,
) -> Report:
    """Read, analyse, and write the report folder; returns its paths and headline numbers."""
    require_report_extra()
    started = time.perf_counter()
    until = (now or datetime.now(UTC)).astimezone(UTC)
    start = since if isinstance(since, datetime) else parse_since(since, until)
    out = Path(out_dir) if out_dir is not None else default_out_dir(until)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create {out}: {exc.strerror or exc}") from None

    try:
        with psycopg.connect(dsn, connect_timeout=5, application_name="chirpbase-report") as conn:
            raw_tweets, raw_daily, counts = load(conn, start, until)
            spend = load_spend(conn)
            poll_results = polls.load_polls(conn, start, until)
    except psycopg.OperationalError as exc:
        raise ReportError(f"cannot connect to the database: {str(exc).strip()}") from None

    a = analyse(raw_tweets, raw_daily, start, until, counts)
    a.summary["spend"] = spend
    a.summary["polls"] = poll_results
    files: dict[str, Path] = {}
    files.update(write_csvs(a, out))
    if poll_results:
        files["polls_csv"] = polls.write_csv(poll_results, out / "polls.csv")
    chart_files: dict[str, Path] = {}
    if not a.empty:
        chart_files = charts.render_all(a, out)
        files.update(chart_files)
    files["html"] = out / "report.html"
    files["summary_json"] = out / "summary.json"
    elapsed = time.perf_counter() - started
    a.summary["empty"] = a.empty
    a.summary["seconds"] = round(elapsed, 3)
    files["html"].write_text(html.render(a, chart_files), encoding="utf-8")
    a.summary["files"] = {k: str(v) for k, v in files.items()}
    files["summary_json"].write_text(
        json.dumps(a.summary, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return Report(
        out_dir=out,
        files=files,
        summary=a.summary,
        empty=a.empty,
        seconds=time.perf_counter() - started,
    )
