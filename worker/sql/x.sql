-- Named queries for the X handlers: posting, likes, mentions, stats, quotas.

-- name: get_account
select user_id, username, mentions_since_id, webhook_last_event_at from public.x_account where id = 1;

-- name: set_account_identity
update public.x_account set user_id = %(user_id)s, username = %(username)s, updated_at = now()
where id = 1;

-- name: get_scheduled_tweet
select id, content, topic, with_image, scheduled_for, status, tweet_id, error, image_path, image_url,
       alt_text, post_started_at
from public.scheduled_tweets where id = %(id)s;

-- name: mark_posting
-- Record the intent to post before calling X. Only a row that is ready (or already posting, after
-- an unknown outcome) moves on; cancellation wins over a late job.
update public.scheduled_tweets
set status = 'posting', post_started_at = coalesce(post_started_at, now()), error = null
where id = %(id)s and status in ('pending', 'approved', 'posting')
returning id, post_started_at;

-- name: unmark_posting
-- X certainly did not create the tweet (rate limited, capped) and no earlier attempt may have:
-- back to ready.
update public.scheduled_tweets
set status = case when approved_at is not null then 'approved' else 'pending' end,
    post_started_at = null, reconcile_after = null, error = %(error)s
where id = %(id)s and status = 'posting';

-- name: record_posted
with t as (
  insert into public.tweets (tweet_id, content, image_url, posted_at, scheduled_tweet_id, media_id, alt_text)
  values (%(tweet_id)s, %(content)s, %(image_url)s, %(posted_at)s, %(scheduled_tweet_id)s, %(media_id)s,
          %(alt_text)s)
  on conflict (tweet_id) do nothing
  returning id
)
update public.scheduled_tweets
set status = 'posted', tweet_id = %(tweet_id)s, posted_at = %(posted_at)s, error = null
where id = %(scheduled_tweet_id)s;

-- name: mark_scheduled_failed
update public.scheduled_tweets set status = 'failed', error = %(error)s
where id = %(id)s and status not in ('posted', 'cancelled', 'rejected');

-- name: consume_quota
-- The month is read in the same statement (the same now()): a refund goes back to it.
select public.consume_quota(%(resource)s::text, %(amount)s::numeric) as taken,
       public.current_month() as month;

-- name: refund_quota
select public.refund_quota(%(resource)s::text, %(amount)s::numeric, %(month)s::date);

-- name: record_api_usage
select public.record_api_usage(
  %(endpoint)s::text, %(calls)s::int, %(posts)s::int, %(reads)s::int, %(rate_limit_limit)s::int,
  %(rate_limit_remaining)s::int, %(rate_limit_reset)s::timestamptz, %(openai_input_tokens)s::int,
  %(openai_output_tokens)s::int, %(images)s::int, %(estimated_cost_usd)s::numeric);

-- name: get_reply
select reply_id, original_tweet_id, author_id, content, liked from public.replies
where reply_id = %(reply_id)s;

-- name: mark_reply_liked
update public.replies set liked = true, liked_at = now() where reply_id = %(reply_id)s and not liked;

-- name: reserve_daily_like
-- One of today's (UTC) likes for this reply, atomically under the cap; false at the cap.
select public.reserve_daily_like(%(reply_id)s, %(cap)s::integer);

-- name: release_daily_like
select public.release_daily_like(%(reply_id)s);

-- name: insert_replies
-- Idempotent by reply_id: polling twice, or a webhook delivery racing a poll, adds nothing.
-- Returns the rows inserted. One thing a poll adds to a row the webhook stored first: the
-- author's username, which X's post.reply.create events may not carry ("includes": {}).
with r as (
  select * from jsonb_to_recordset(%(rows)s) as r(reply_id text, original_tweet_id text,
    author_id text, author_username text, content text, created_at timestamptz,
    conversation_id text, source text)
), ins as (
  insert into public.replies (reply_id, original_tweet_id, author_id, author_username, content,
                              created_at, conversation_id, source)
  select r.reply_id, r.original_tweet_id, r.author_id, r.author_username, r.content,
         r.created_at, r.conversation_id, r.source
  from r
  on conflict (reply_id) do nothing
  returning reply_id
), named as (
  update public.replies p set author_username = r.author_username
  from r
  where p.reply_id = r.reply_id and p.author_username is null and r.author_username is not null
)
select reply_id from ins;

-- name: advance_since_id
-- Tweet ids are increasing integers; never move the cursor backwards.
update public.x_account
set mentions_since_id = %(since_id)s, updated_at = now()
where id = 1
  and (mentions_since_id is null or mentions_since_id::numeric < %(since_id)s::numeric);

-- name: tweets_for_stats
select tweet_id from public.tweets
where tweet_id is not null and posted_at >= now() - make_interval(days => %(days)s)
order by posted_at desc;

-- name: insert_stats
-- One stats row per tweet per collection, and the latest numbers on tweets.engagement.
with s as (
  select * from jsonb_to_recordset(%(rows)s) as r(tweet_id text, likes int, retweets int,
                                                  replies int, impressions int, quotes int,
                                                  bookmarks int)
), ins as (
  insert into public.stats (tweet_id, likes, retweets, replies, impressions, quotes, bookmarks,
                            collected_at)
  select tweet_id, likes, retweets, replies, impressions, quotes, bookmarks, %(collected_at)s from s
  returning 1
)
update public.tweets t
set engagement = jsonb_build_object('likes', s.likes, 'retweets', s.retweets, 'replies', s.replies,
                                    'impressions', s.impressions, 'quotes', s.quotes,
                                    'bookmarks', s.bookmarks, 'collected_at', %(collected_at)s)
from s where t.tweet_id = s.tweet_id;

-- name: reconcile_reads
-- X's own count of posts read wins when it is higher: quotas follow what X bills.
insert into public.quota_usage as q (month, resource, used, x_reported, reconciled_at)
values (public.current_month(), 'reads', %(reported)s, %(reported)s, now())
on conflict (month, resource) do update
set x_reported = excluded.x_reported,
    reconciled_at = now(),
    used = greatest(q.used, excluded.x_reported),
    updated_at = now()
returning used, x_reported;

-- name: reads_used
select coalesce((select used from public.quota_usage
                 where month = public.current_month() and resource = 'reads'), 0);
