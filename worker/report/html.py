"""The report as one self-contained HTML file: inline CSS, charts as base64 PNG, no external assets.

Everything from the database is escaped; the page opens offline and can be mailed as is.
"""

from __future__ import annotations

import base64
import math
from html import escape
from pathlib import Path
from typing import Any

from worker.report import polls
from worker.report.analysis import WEEKDAYS, Analysis, records

CSS = """
:root { --ink:#0f1419; --muted:#536471; --line:#eff3f4; --card:#f7f9f9; --accent:#1d9bf0; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; color:var(--ink); background:#fff; }
main { max-width:1120px; margin:0 auto; padding:32px 24px 64px; }
h1 { font-size:28px; margin:0 0 4px; }
h2 { font-size:20px; margin:40px 0 8px; padding-top:8px; border-top:1px solid var(--line); }
.sub { color:var(--muted); margin:0 0 24px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(160px, 1fr)); gap:12px; }
.card { background:var(--card); border-radius:14px; padding:14px 16px; }
.card .k { color:var(--muted); font-size:13px; }
.card .v { font-size:24px; font-weight:700; margin-top:2px; }
.card .n { color:var(--muted); font-size:12px; }
figure { margin:16px 0; }
figure img { width:100%; height:auto; border:1px solid var(--line); border-radius:12px; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; }
table { border-collapse:collapse; width:100%; font-size:14px; margin:12px 0; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line);
         vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:13px; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.text { max-width:520px; }
details summary { cursor:pointer; color:var(--accent); margin:8px 0; }
.empty { background:var(--card); border-radius:14px; padding:24px; font-size:17px; }
footer { color:var(--muted); font-size:12px; margin-top:48px; }
"""

CAPTIONS = {
    "engagement_over_time_png": (
        "Engagement over time",
        "Likes, retweets and replies gained per UTC day across all tweets, with impressions and "
        "the day's engagement rate below.",
    ),
    "best_times_heatmap_png": (
        "Best hours and weekdays",
        "Mean engagements per tweet by the weekday and hour it was posted (UTC). Empty cells "
        "had no posts; the outlined cell is the best slot.",
    ),
    "image_vs_no_image_png": (
        "Image vs. no image",
        "Mean likes, retweets and replies per tweet, and the pooled engagement rate, for tweets "
        "with and without an image.",
    ),
    "top_tweets_png": (
        "Top tweets",
        "The tweets with the most engagements (latest stats), split into likes, retweets and "
        "replies.",
    ),
}


def _missing(v: Any) -> bool:
    """None, NaN and pandas' NA alike."""
    try:
        return v is None or math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def _num(v: Any, digits: int = 0) -> str:
    if _missing(v):
        return "–"
    if digits:
        return f"{float(v):,.{digits}f}"
    return f"{round(float(v)):,}"


def _pct(v: Any, digits: int = 2) -> str:
    if _missing(v):
        return "–"
    return f"{float(v) * 100:.{digits}f}%"


def _stamp(iso: Any) -> str:
    return str(iso or "")[:16].replace("T", " ") + " UTC" if iso else ""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _card(key: str, value: str, note: str = "") -> str:
    n = f'<div class="n">{escape(note)}</div>' if note else ""
    return (
        f'<div class="card"><div class="k">{escape(key)}</div>'
        f'<div class="v">{escape(value)}</div>{n}</div>'
    )


def _table(headers: list[tuple[str, bool]], rows: list[list[tuple[str, str]]]) -> str:
    head = "".join(f'<th class="{"num" if num else ""}">{escape(h)}</th>' for h, num in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="{cls}">{escape(text)}</td>' for text, cls in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(a: Analysis, charts: dict[str, Path]) -> str:
    s = a.summary
    title = "chirpbase engagement report"
    window = f"{a.since:%Y-%m-%d %H:%M} – {a.until:%Y-%m-%d %H:%M} UTC"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}{polls.CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(window)} · generated {escape(_stamp(s.get("generated_at")))}</p>',
    ]
    if a.empty:
        parts.append(
            '<div class="empty">Nothing to report yet: no tweets were posted and no stats were '
            "collected in this window. Schedule a tweet (<code>chirpbase schedule</code>) and "
            "come back once the worker has collected stats.</div>"
        )
    else:
        parts.append(_headline(a))
        for name, path in charts.items():
            heading, caption = CAPTIONS.get(name, (name, ""))
            parts.append(
                f"<h2>{escape(heading)}</h2><figure>{_img(path, heading)}"
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
            if name == "best_times_heatmap_png":
                parts.append(_best_times_tables(a))
            if name == "image_vs_no_image_png":
                parts.append(_image_table(a))
            if name == "top_tweets_png":
                parts.append(_top_table(a))
        parts.append(polls.render_html(s.get("polls") or []))
        parts.append(_daily_table(a))
    parts.append(
        "<footer>Engagements = likes + retweets + replies from each tweet's latest stats. "
        "Engagement rate = engagements / impressions over tweets with impressions. "
        f"{_num(s.get('stats_in_window'))} stats rows in the window, "
        f"{_num(s.get('stats_total'))} in total. CSV exports sit next to this file. "
        "All times UTC.</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _headline(a: Analysis) -> str:
    s = a.summary
    best_hour = s.get("best_hour")
    lift = s.get("image_lift")
    cards = [
        _card("Tweets", _num(s["tweets"]), f"{_num(s['tweets_with_stats'])} with stats"),
        _card("Impressions", _num(s["impressions"])),
        _card(
            "Engagements",
            _num(s["engagements"]),
            f"{_num(s['likes'])} likes · {_num(s['retweets'])} RTs · {_num(s['replies'])} replies",
        ),
        _card("Engagement rate", _pct(s["engagement_rate"])),
        _card(
            "Per tweet",
            _num(s["mean_engagements_per_tweet"], 1),
            f"median {_num(s['median_engagements_per_tweet'], 1)}",
        ),
        _card(
            "Best hour",
            "–" if best_hour is None else f"{best_hour:02d}:00 UTC",
            ""
            if best_hour is None
            else f"{_num(s['best_hour_mean_engagements'], 1)} per tweet, n={s['best_hour_tweets']}",
        ),
        _card(
            "Best weekday",
            s.get("best_weekday") or "–",
            ""
            if not s.get("best_weekday")
            else f"{_num(s['best_weekday_mean_engagements'], 1)} per tweet, "
            f"n={s['best_weekday_tweets']}",
        ),
        _card(
            "Image lift",
            "–" if lift is None else f"{lift:.2f}×",
            "engagements with vs. without image",
        ),
    ]
    spend = s.get("spend")
    if spend:
        projected = spend.get("projected_usd")
        budget = spend.get("budget_usd")
        cards.append(
            _card(
                "Spend (billing cycle)",
                f"${spend['spent_usd']:,.2f}",
                f"X ${spend['x_usd']:,.2f} · OpenAI ${spend['openai_usd']:,.2f} · projected "
                + ("–" if projected is None else f"${projected:,.2f}")
                + ("" if budget is None else f" of ${budget:,.2f}"),
            )
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _best_times_tables(a: Analysis) -> str:

    hours = a.by_hour[a.by_hour["tweets"] > 0].sort_values(
        ["mean_engagements", "tweets"], ascending=[False, False], kind="stable"
    )
    hour_rows = [
        [
            (f"{int(r['hour']):02d}:00", ""),
            (_num(r["tweets"]), "num"),
            (_num(r["mean_engagements"], 1), "num"),
        ]
        for r in records(hours.head(5), index=True)
    ]
    days = a.by_weekday[a.by_weekday["tweets"] > 0].sort_values(
        ["mean_engagements", "tweets"], ascending=[False, False], kind="stable"
    )
    day_rows = [
        [
            (WEEKDAYS[int(r["weekday"])], ""),
            (_num(r["tweets"]), "num"),
            (_num(r["mean_engagements"], 1), "num"),
        ]
        for r in records(days, index=True)
    ]
    headers = [("", False), ("tweets", True), ("mean engagements", True)]
    return (
        "<details open><summary>Best hours (top 5) and weekdays</summary>"
        + _table([("Hour (UTC)", False), *headers[1:]], hour_rows)
        + _table([("Weekday", False), *headers[1:]], day_rows)
        + "</details>"
    )


def _image_table(a: Analysis) -> str:
    rows = [
        [
            (str(g), ""),
            (_num(r["tweets"]), "num"),
            (_num(r["likes"], 1), "num"),
            (_num(r["retweets"], 1), "num"),
            (_num(r["replies"], 1), "num"),
            (_num(r["impressions"]), "num"),
            (_pct(r["engagement_rate"]), "num"),
        ]
        for g, r in a.image.iterrows()
    ]
    headers = [
        ("", False),
        ("tweets", True),
        ("likes", True),
        ("retweets", True),
        ("replies", True),
        ("impressions", True),
        ("rate", True),
    ]
    return _table(headers, rows)


def _top_table(a: Analysis) -> str:
    rows = [
        [
            (str(i), "num"),
            (f"{r.posted_at:%Y-%m-%d %H:%M}", ""),
            (str(r.content), "text"),
            (_num(r.likes), "num"),
            (_num(r.retweets), "num"),
            (_num(r.replies), "num"),
            (_num(r.impressions), "num"),
            (_pct(r.engagement_rate), "num"),
        ]
        for i, r in enumerate(a.top.itertuples(), start=1)
    ]
    headers = [
        ("#", True),
        ("posted (UTC)", False),
        ("tweet", False),
        ("likes", True),
        ("RTs", True),
        ("replies", True),
        ("impressions", True),
        ("rate", True),
    ]
    return _table(headers, rows)


def _daily_table(a: Analysis) -> str:
    if a.daily.empty:
        return ""
    rows = [
        [
            (str(r.day), ""),
            (_num(r.tweets_posted), "num"),
            (_num(r.likes), "num"),
            (_num(r.retweets), "num"),
            (_num(r.replies), "num"),
            (_num(r.impressions), "num"),
            (_pct(r.engagement_rate), "num"),
        ]
        for r in a.daily.iloc[::-1].itertuples()
    ]
    headers = [
        ("day", False),
        ("posted", True),
        ("likes", True),
        ("RTs", True),
        ("replies", True),
        ("impressions", True),
        ("rate", True),
    ]
    return (
        f"<h2>Daily series</h2><details><summary>{len(rows)} days (newest first); also in "
        f"daily.csv</summary>{_table(headers, rows)}</details>"
    )
