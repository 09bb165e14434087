-- Named queries for the engagement report (worker/report/).
--
-- The heavy lifting happens here, where it is cheap: the latest snapshot per tweet comes from the
-- (tweet_id, collected_at desc) index, and daily gains are computed with window functions, so
-- pandas only ever sees one row per tweet and one row per day, however many stats rows exist.

-- name: report_tweets
-- One row per tweet posted in the window, with its latest stats. X's counters are cumulative, so
-- the latest snapshot is the tweet's engagement so far. Tweets with no stats yet fall back to the
-- numbers in tweets.engagement (when a handler kept them there), else zero.
select t.id,
       t.tweet_id,
       t.content,
       t.posted_at,
       (coalesce(t.image_url, '') <> '') as has_image,
       coalesce(s.likes, e.likes, 0)::bigint as likes,
       coalesce(s.retweets, e.retweets, 0)::bigint as retweets,
       coalesce(s.replies, e.replies, 0)::bigint as replies,
       coalesce(s.impressions, e.impressions)::bigint as impressions,
       s.collected_at as last_collected_at
from public.tweets t
left join lateral (
  select x.likes, x.retweets, x.replies, x.impressions, x.collected_at
  from public.stats x
  where x.tweet_id = t.tweet_id
  order by x.collected_at desc
  limit 1
) s on true
cross join lateral (
  select case when jsonb_typeof(l) = 'number' then l::numeric end as likes,
         case when jsonb_typeof(r) = 'number' then r::numeric end as retweets,
         case when jsonb_typeof(p) = 'number' then p::numeric end as replies,
         case when jsonb_typeof(i) = 'number' then i::numeric end as impressions
  from (select coalesce(t.engagement -> 'likes', t.engagement -> 'like_count') as l,
               coalesce(t.engagement -> 'retweets', t.engagement -> 'retweet_count') as r,
               coalesce(t.engagement -> 'replies', t.engagement -> 'reply_count') as p,
               coalesce(t.engagement -> 'impressions', t.engagement -> 'impression_count') as i
       ) as raw
) e
where t.posted_at is not null
  and t.posted_at >= %(since)s::timestamptz
  and t.posted_at < %(until)s::timestamptz
order by t.posted_at;

-- name: report_daily_gains
-- Engagement gained per UTC day across all tweets: each tweet's last snapshot of a day minus its
-- last snapshot of the previous day it was collected (a first snapshot counts in full).
with snap as (
  select distinct on (s.tweet_id, (s.collected_at at time zone 'UTC')::date)
         s.tweet_id,
         (s.collected_at at time zone 'UTC')::date as day,
         s.likes, s.retweets, s.replies, s.impressions
  from public.stats s
  where s.collected_at < %(until)s::timestamptz
  order by s.tweet_id, (s.collected_at at time zone 'UTC')::date, s.collected_at desc
), delta as (
  select day,
         likes - coalesce(lag(likes) over w, 0) as likes,
         retweets - coalesce(lag(retweets) over w, 0) as retweets,
         replies - coalesce(lag(replies) over w, 0) as replies,
         impressions - coalesce(lag(impressions) over w, 0) as impressions
  from snap
  window w as (partition by tweet_id order by day)
)
select day,
       sum(likes)::bigint as likes,
       sum(retweets)::bigint as retweets,
       sum(replies)::bigint as replies,
       sum(impressions)::bigint as impressions
from delta
where day >= (%(since)s::timestamptz at time zone 'UTC')::date
group by day
order by day;

-- name: report_counts
select (select count(*) from public.tweets where posted_at is not null) as tweets_total,
       (select count(*) from public.stats) as stats_total,
       (select count(*) from public.stats
        where collected_at >= %(since)s::timestamptz and collected_at < %(until)s::timestamptz)
         as stats_in_window;
