"""The engagement report's analysis: what worked, when to post, whether images help.

`load()` reads two small result sets from Postgres (latest stats per tweet, and engagement
gained per day, both aggregated in SQL: see worker/sql/report.sql) and `analyse()` turns them
into an `Analysis` with pandas; worker.report.build writes the files from it.

Definitions (all times UTC):
- engagements = likes + retweets + replies, from each tweet's latest stats snapshot (X's counters
  are cumulative);
- engagement rate = engagements / impressions, over tweets with impressions > 0 (pooled: the sum
  of engagements over the sum of impressions, so big tweets weigh more than small ones);
- best hour / weekday = highest mean engagements per tweet posted then; slots backed by a single
  tweet are ignored when others have at least two;
- daily series = engagement gained per day across all tweets (difference between a tweet's last
  snapshots of consecutive collection days), plus the tweets posted that day.

pandas and matplotlib are imported lazily: the worker never pays for them. They are the
optional `report` extra, left out of the worker image; without them the report says so.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import psycopg

from worker.db import query

if TYPE_CHECKING:
    import pandas as pd

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_SINCE = "30d"
TOP_N = 10
SINCE_HELP = "How far back: 30d, 12h, 8w, an ISO date (2026-11-01), or 'all'."
_SINCE = re.compile(r"^(\d+)\s*([hdw])$")

TWEET_COLUMNS = [
    "tweet_id",
    "posted_at",
    "weekday",
    "hour",
    "has_image",
    "likes",
    "retweets",
    "replies",
    "impressions",
    "engagements",
    "engagement_rate",
    "last_collected_at",
    "content",
]
DAILY_COLUMNS = [
    "day",
    "tweets_posted",
    "likes",
    "retweets",
    "replies",
    "engagements",
    "impressions",
    "engagement_rate",
]


class ReportError(Exception):
    """The report could not be built (bad --since, unreachable database, unwritable folder)."""


def require_report_extra() -> None:
    """Fail clearly when the optional `report` extra (pandas, matplotlib) is not installed."""
    missing = [m for m in ("pandas", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise ReportError(
            f"the report needs {' and '.join(missing)}, the optional `report` extra, which the"
            " worker image leaves out: run it from a checkout (`make deps`, or"
            " `uv sync --extra report`) or `pip install 'chirpbase[report]'`"
        )


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The start of the report window (UTC) from `30d`, `12h`, `8w`, an ISO date, or `all`."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    s = text.strip().lower()
    if s == "all":
        return datetime(1970, 1, 1, tzinfo=UTC)
    if m := _SINCE.match(s):
        n, unit = int(m.group(1)), m.group(2)
        return now - timedelta(**{{"h": "hours", "d": "days", "w": "weeks"}[unit]: n})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"cannot read --since {text!r}: {SINCE_HELP}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass
class Analysis:
    """Everything the charts, CSVs and HTML are drawn from."""

    since: datetime
    until: datetime
    tweets: pd.DataFrame  # one row per tweet, TWEET_COLUMNS
    daily: pd.DataFrame  # one row per day, DAILY_COLUMNS
    slots: pd.DataFrame  # weekday x hour: tweets, mean_engagements (long form)
    by_hour: pd.DataFrame  # hour -> tweets, mean_engagements
    by_weekday: pd.DataFrame  # weekday -> tweets, mean_engagements
    image: pd.DataFrame  # group -> tweets, likes, retweets, replies, engagements, rate
    top: pd.DataFrame  # the TOP_N tweets by engagements
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return bool(self.tweets.empty and float(self.daily["engagements"].sum()) == 0)


def records(df: pd.DataFrame, *, index: bool = False) -> list[dict[str, Any]]:
    """Rows as plain dicts (with the index as columns when `index`)."""
    return cast(list[dict[str, Any]], (df.reset_index() if index else df).to_dict("records"))


def _per_group(tw: pd.DataFrame, by: str, size: int) -> pd.DataFrame:
    """tweets and mean_engagements per value 0..size-1 of `by` (hour or weekday)."""
    import pandas as pd

    out = tw.groupby(by)["engagements"].agg(["size", "mean"])
    out = out.rename(columns={"size": "tweets", "mean": "mean_engagements"})
    out = out.reindex(pd.RangeIndex(size, name=by))
    out["tweets"] = out["tweets"].fillna(0).astype("int64")
    return out


# -- loading -----------------------------------------------------------------------------------


def load(
    conn: psycopg.Connection[Any], since: datetime, until: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Per-tweet latest stats, daily gains and row counts, straight from SQL."""
    import pandas as pd

    params = {"since": since, "until": until}

    def frame(name: str) -> pd.DataFrame:
        with conn.cursor() as cur:
            cur.execute(query(name), params)
            columns = [d.name for d in cur.description or []]
            return pd.DataFrame.from_records(cur.fetchall(), columns=columns)

    tweets = frame("report_tweets")
    daily = frame("report_daily_gains")
    with conn.cursor() as cur:
        cur.execute(query("report_counts"), params)
        row = cur.fetchone()
        names = [d.name for d in cur.description or []]
    counts = {n: int(v or 0) for n, v in zip(names, row or (), strict=False)}
    return tweets, daily, counts


def load_spend(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Spend so far in the current billing cycle and its projection (the query `status` and
    /health use), as plain numbers for the summary."""
    with conn.cursor() as cur:
        cur.execute(query("operator_month_spend"))
        row = cur.fetchone()
        names = [d.name for d in cur.description or []]
    spend = dict(zip(names, row or (), strict=False))
    spent = float(spend.get("spent_usd") or 0.0)
    budget = spend.get("budget_usd")
    ends: Any = spend.get("cycle_ends")
    return {
        "cycle_starts": str(spend.get("month")) if spend.get("month") else None,
        "cycle_ends": ends.isoformat() if hasattr(ends, "isoformat") else ends,
        "spent_usd": round(spent, 4),
        "x_usd": round(float(spend.get("x_usd") or 0.0), 4),
        "openai_usd": round(float(spend.get("openai_usd") or 0.0), 4),
        "projected_usd": spend.get("projected_usd"),
        "budget_usd": float(budget) if budget is not None else None,
    }


# -- analysis ----------------------------------------------------------------------------------


def _rate(engagements: float, impressions: float) -> float | None:
    return float(engagements / impressions) if impressions and impressions > 0 else None


def _best(table: pd.DataFrame) -> Any | None:
    """Index of the highest mean, preferring slots with >= 2 tweets; ties go to more tweets."""
    if table.empty:
        return None
    eligible = table[table["tweets"] >= 2]
    if eligible.empty:
        eligible = table[table["tweets"] >= 1]
    if eligible.empty:
        return None
    ranked = eligible.sort_values(
        ["mean_engagements", "tweets"], ascending=[False, False], kind="stable"
    )
    return ranked.index[0]


def analyse(
    raw_tweets: pd.DataFrame,
    raw_daily: pd.DataFrame,
    since: datetime,
    until: datetime,
    counts: dict[str, int] | None = None,
) -> Analysis:
    """Derive every table the report shows from the two SQL result sets."""
    import numpy as np
    import pandas as pd

    # Per tweet --------------------------------------------------------------------------------
    tw = pd.DataFrame(
        {
            "tweet_id": raw_tweets.get("tweet_id", pd.Series(dtype="object")).astype("object"),
            "posted_at": pd.to_datetime(
                raw_tweets.get("posted_at", pd.Series(dtype="object")), utc=True
            ),
            "has_image": raw_tweets.get("has_image", pd.Series(dtype=bool)).astype(bool),
            "content": raw_tweets.get("content", pd.Series(dtype="object")).astype("object"),
            "last_collected_at": pd.to_datetime(
                raw_tweets.get("last_collected_at", pd.Series(dtype="object")), utc=True
            ),
        }
    )
    for col in ("likes", "retweets", "replies", "impressions"):
        tw[col] = pd.to_numeric(raw_tweets.get(col, pd.Series(dtype=float)), errors="coerce")
    for col in ("likes", "retweets", "replies"):
        tw[col] = tw[col].fillna(0).astype("int64")
    tw["engagements"] = tw["likes"] + tw["retweets"] + tw["replies"]
    has_imp = tw["impressions"] > 0
    tw["engagement_rate"] = (tw["engagements"] / tw["impressions"]).where(has_imp)
    tw["weekday"] = tw["posted_at"].dt.day_of_week.astype("int64")
    tw["hour"] = tw["posted_at"].dt.hour.astype("int64")
    tw = tw[TWEET_COLUMNS]

    # When to post -------------------------------------------------------------------------------
    grouped = tw.groupby(["weekday", "hour"])["engagements"].agg(["size", "mean"])
    slots = grouped.rename(columns={"size": "tweets", "mean": "mean_engagements"}).reset_index()
    by_hour = _per_group(tw, "hour", 24)
    by_weekday = _per_group(tw, "weekday", 7)
    slot_table = slots.set_index(["weekday", "hour"])
    best_hour = _best(by_hour)
    best_weekday = _best(by_weekday)
    best_slot = _best(slot_table)

    # Image vs text only -------------------------------------------------------------------------
    rows = []
    for label, mask in (("Text only", ~tw["has_image"]), ("With image", tw["has_image"])):
        g = tw[mask]
        imp = g["impressions"] > 0
        rows.append(
            {
                "group": label,
                "tweets": len(g),
                "likes": float(g["likes"].mean()) if len(g) else np.nan,
                "retweets": float(g["retweets"].mean()) if len(g) else np.nan,
                "replies": float(g["replies"].mean()) if len(g) else np.nan,
                "engagements": float(g["engagements"].mean()) if len(g) else np.nan,
                "impressions": float(g["impressions"].mean()) if imp.any() else np.nan,
                "engagement_rate": _rate(
                    float(g.loc[imp, "engagements"].sum()), float(g.loc[imp, "impressions"].sum())
                ),
            }
        )
    image = pd.DataFrame(rows).set_index("group")

    # Top tweets ---------------------------------------------------------------------------------
    top = tw.sort_values(["engagements", "posted_at"], ascending=[False, False], kind="stable")
    top = top.head(TOP_N)

    # Daily series -------------------------------------------------------------------------------
    daily = _daily(raw_daily, tw, since, until)

    # Headline numbers ---------------------------------------------------------------------------
    imp_mask = tw["impressions"] > 0
    groups = {r["group"]: r for r in records(image, index=True)}
    text_only, with_image = groups["Text only"], groups["With image"]
    lift = None
    if text_only["tweets"] and with_image["tweets"] and text_only["engagements"] > 0:
        lift = float(with_image["engagements"]) / float(text_only["engagements"])
    summary: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "tweets": len(tw),
        "tweets_with_stats": int(tw["last_collected_at"].notna().sum()),
        "likes": int(tw["likes"].sum()),
        "retweets": int(tw["retweets"].sum()),
        "replies": int(tw["replies"].sum()),
        "impressions": int(tw["impressions"].fillna(0).sum()),
        "engagements": int(tw["engagements"].sum()),
        "engagement_rate": _rate(
            float(tw.loc[imp_mask, "engagements"].sum()),
            float(tw.loc[imp_mask, "impressions"].sum()),
        ),
        "mean_engagements_per_tweet": float(tw["engagements"].mean()) if len(tw) else None,
        "median_engagements_per_tweet": float(tw["engagements"].median()) if len(tw) else None,
        "best_hour": None if best_hour is None else int(best_hour),
        "best_hour_mean_engagements": None
        if best_hour is None
        else float(by_hour.loc[best_hour, "mean_engagements"]),
        "best_hour_tweets": None if best_hour is None else int(by_hour.loc[best_hour, "tweets"]),
        "best_weekday": None if best_weekday is None else WEEKDAYS[int(best_weekday)],
        "best_weekday_mean_engagements": None
        if best_weekday is None
        else float(by_weekday.loc[best_weekday, "mean_engagements"]),
        "best_weekday_tweets": None
        if best_weekday is None
        else int(by_weekday.loc[best_weekday, "tweets"]),
        "best_slot": None
        if best_slot is None
        else {
            "weekday": WEEKDAYS[int(best_slot[0])],
            "hour": int(best_slot[1]),
            "mean_engagements": float(slot_table.loc[best_slot, "mean_engagements"]),
            "tweets": int(slot_table.loc[best_slot, "tweets"]),
        },
        "image": {
            str(k): {
                "tweets": int(v["tweets"]),
                "mean_engagements": None if pd.isna(v["engagements"]) else float(v["engagements"]),
                "engagement_rate": None
                if v["engagement_rate"] is None or pd.isna(v["engagement_rate"])
                else float(v["engagement_rate"]),
            }
            for k, v in groups.items()
        },
        "image_lift": lift,
        "top_tweets": [
            {
                "tweet_id": r["tweet_id"],
                "posted_at": r["posted_at"].isoformat(),
                "content": r["content"],
                "likes": int(r["likes"]),
                "retweets": int(r["retweets"]),
                "replies": int(r["replies"]),
                "impressions": None if pd.isna(r["impressions"]) else int(r["impressions"]),
                "engagements": int(r["engagements"]),
                "engagement_rate": None
                if pd.isna(r["engagement_rate"])
                else round(float(r["engagement_rate"]), 5),
            }
            for r in records(top)
        ],
        "days": len(daily),
        **(counts or {}),
    }
    return Analysis(
        since=since,
        until=until,
        tweets=tw,
        daily=daily,
        slots=slots,
        by_hour=by_hour,
        by_weekday=by_weekday,
        image=image,
        top=top,
        summary=summary,
    )


def _daily(raw: pd.DataFrame, tw: pd.DataFrame, since: datetime, until: datetime) -> pd.DataFrame:
    import pandas as pd

    metrics = ["likes", "retweets", "replies", "impressions"]
    gains = pd.DataFrame(
        {c: pd.to_numeric(raw.get(c, pd.Series(dtype=float)), errors="coerce") for c in metrics}
    )
    gains.index = pd.to_datetime(raw.get("day", pd.Series(dtype="object"))).rename("day")
    posted = tw.groupby(tw["posted_at"].dt.tz_convert(None).dt.normalize()).size()
    posted.index = pd.DatetimeIndex(posted.index).rename("day")
    if gains.empty and posted.empty:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    first = min(x.min() for x in (gains.index, posted.index) if len(x))
    last = pd.Timestamp(until.astimezone(UTC).replace(tzinfo=None)).normalize()
    first = max(first, pd.Timestamp(since.astimezone(UTC).replace(tzinfo=None)).normalize())
    days = pd.date_range(first, max(first, last), freq="D", name="day")
    daily = gains.reindex(days)
    daily[["likes", "retweets", "replies"]] = daily[["likes", "retweets", "replies"]].fillna(0)
    daily["tweets_posted"] = posted.reindex(days).fillna(0).astype("int64")
    daily["engagements"] = daily["likes"] + daily["retweets"] + daily["replies"]
    daily["engagement_rate"] = (daily["engagements"] / daily["impressions"]).where(
        daily["impressions"] > 0
    )
    daily = daily.reset_index()
    daily["day"] = daily["day"].dt.date
    return daily[DAILY_COLUMNS]
