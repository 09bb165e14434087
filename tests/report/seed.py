"""Report fixture data: tweets and stats with a known best hour, weekday and top tweet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

HOURS = (8, 11, 14, 17, 20)
BEST_HOUR = 14
BEST_WEEKDAY = 2  # Wednesday


@dataclass(frozen=True)
class Seeded:
    tweets: int
    stats: int
    top_content: str
    first_posted: datetime


def seed_known_pattern(conn: psycopg.Connection, now: datetime | None = None) -> Seeded:
    """20 tweets, Monday to Thursday of last week, at 08, 11, 14, 17 and 20 UTC.

    Each weekday has one tweet per hour and each hour one per weekday, so the effects separate:
    14:00 adds 4 units, Wednesday 2, an image 1 (images are spread evenly over the hours). One
    unit is 6 likes + 3 retweets + 1 reply. Every tweet has three cumulative stats snapshots.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    monday = (now - timedelta(days=7 + now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    tweets = stats = 0
    top_content, top_units = "", -1
    for wd in range(4):
        for hi, hour in enumerate(HOURS):
            posted = monday + timedelta(days=wd, hours=hour)
            image = (wd + hi) % 2 == 0
            units = 1 + 4 * (hour == BEST_HOUR) + 2 * (wd == BEST_WEEKDAY) + int(image)
            tweet_id = f"19{wd}{hi:02d}000"
            content = f"Tip {wd}-{hour:02d}: EXPLAIN before you index 🚀 (saves $5)"
            if units > top_units:
                top_content, top_units = content, units
            conn.execute(
                "insert into public.tweets (tweet_id, content, image_url, posted_at)"
                " values (%s, %s, %s, %s)",
                (
                    tweet_id,
                    content,
                    f"https://img.example/{tweet_id}.png" if image else None,
                    posted,
                ),
            )
            tweets += 1
            for fraction, after in (
                (0.3, timedelta(hours=1)),
                (0.7, timedelta(hours=6)),
                (1.0, timedelta(hours=30)),
            ):
                conn.execute(
                    "insert into public.stats (tweet_id, likes, retweets, replies, impressions,"
                    " collected_at) values (%s, %s, %s, %s, %s, %s)",
                    (
                        tweet_id,
                        round(6 * units * fraction),
                        round(3 * units * fraction),
                        round(1 * units * fraction),
                        round((1000 * units + 50 * hi) * fraction),
                        min(posted + after, now - timedelta(minutes=1)),
                    ),
                )
                stats += 1
    return Seeded(tweets=tweets, stats=stats, top_content=top_content, first_posted=monday)


def seed_bulk(conn: psycopg.Connection, tweets: int = 1000, snapshots: int = 100) -> int:
    """`tweets` tweets over the last 30 days with `snapshots` stats rows each (all in SQL)."""
    conn.execute(
        """
        insert into public.tweets (tweet_id, content, image_url, posted_at)
        select 'bulk' || g, 'Bulk tweet number ' || g || ' about Postgres and Python',
               case when g %% 3 = 0 then 'https://img.example/' || g || '.png' end,
               now() - interval '30 days' + (g::float / %(n)s) * interval '29 days'
        from generate_series(1, %(n)s) g
        """,
        {"n": tweets},
    )
    conn.execute(
        """
        insert into public.stats (tweet_id, likes, retweets, replies, impressions, collected_at)
        select t.tweet_id,
               (s * (1 + (g %% 7)))::int, (s * (g %% 3))::int / 2, (s * (1 + g %% 2))::int / 3,
               (s * 120 * (1 + (g %% 7)))::int,
               least(t.posted_at + s * interval '20 minutes', now() - interval '1 minute')
        from generate_series(1, %(n)s) g
        join public.tweets t on t.tweet_id = 'bulk' || g
        cross join generate_series(1, %(k)s) s
        """,
        {"n": tweets, "k": snapshots},
    )
    return tweets * snapshots
