-- Named queries for the X handlers: posting, likes, mentions, stats, quotas.

-- name: get_account
select user_id, username, mentions_since_id, webhook_last_event_at from public.x_account where id = 1;

-- name: set_account_identity
update public.x_account set user_id = %(user_id)s, username = %(username)s, updated_at = now()
where id = 1;

-- name: get_scheduled_tweet
-- A part of a generated thread answers for its thread's topic (its image is generated).
select s.id, s.content, coalesce(s.topic, t.topic) as topic, s.with_image, s.scheduled_for,
       s.status, s.tweet_id, s.error, s.image_path, s.image_url, s.alt_text, s.post_started_at,
       s.in_reply_to_tweet_id, s.quote_tweet_id, s.generated_at, s.poll_options,
       s.poll_duration_minutes, s.duplicate_refused_at
from public.scheduled_tweets s
left join public.scheduled_tweets t on t.id = s.thread_of
where s.id = %(id)s;

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
    conversation_id text, mentions_account boolean, quoted_tweet_id text, lang text, source text)
), ins as (
  insert into public.replies (reply_id, original_tweet_id, author_id, author_username, content,
                              created_at, conversation_id, mentions_account, quoted_tweet_id,
                              lang, source)
  select r.reply_id, r.original_tweet_id, r.author_id, r.author_username, r.content,
         r.created_at, r.conversation_id, r.mentions_account, r.quoted_tweet_id, r.lang, r.source
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
select tweet_id, posted_at from public.tweets
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

-- name: consume_quota_upto
-- As much of `amount` as fits under the cap, at least `minimum` (else 0 and the cap alert).
-- The month is read in the same statement (the same now()): a refund goes back to it.
select public.consume_quota_upto(%(resource)s::text, %(amount)s::numeric, %(minimum)s::numeric)
         as granted,
       public.current_month() as month;

-- name: reserve_usd
-- Hold an estimated price in the monthly budget (false: it does not fit, the alert is raised).
select public.reserve_usd(%(resource)s::text, %(amount)s::numeric);

-- name: settle_usd
select public.settle_usd(%(resource)s::text, %(reserved)s::numeric, %(actual)s::numeric);

-- name: record_x_usage
-- Price one X call by operation (configs.pricing.x), reads once per resource per UTC day.
select public.record_x_usage(
  endpoint => %(endpoint)s::text, operation => %(operation)s::text, requests => %(requests)s::int,
  posts => %(posts)s::int, resource_kind => %(resource_kind)s::text,
  resource_ids => %(resource_ids)s::text[], reserved_usd => %(reserved_usd)s::numeric,
  rate_limit_limit => %(rate_limit_limit)s::int, rate_limit_remaining => %(rate_limit_remaining)s::int,
  rate_limit_reset => %(rate_limit_reset)s::timestamptz);

-- name: x_capability
-- Whether the configured X access tier has a capability (and X has not refused it), and why not.
select public.x_capability_available(%(capability)s::text) as available,
       public.x_capability_notice(%(capability)s::text) as notice;

-- name: pause_x_capability
select public.pause_x_capability(%(capability)s::text, %(detail)s::text);

-- name: x_reply_target
-- A reply's target: did it summon the account (a `replies` row that mentions it or quotes one
-- of its posts: SQL x_summoned_reply), or is it the account's own post (a thread)? Either makes
-- the reply allowed on self-serve access (SQL x_summoned_by); only the first is billed at the
-- summoned-reply price.
select public.x_summoned_reply(%(tweet_id)s::text) as summoned,
       exists (select 1 from public.tweets t where t.tweet_id = %(tweet_id)s::text) as own;

-- name: set_cap_reset_day
-- X's own billing cycle (GET /2/usage/tweets cap_reset_day): every monthly counter follows it.
select public.set_cap_reset_day(%(cap_reset_day)s::integer);

-- name: own_posts_since
-- How many posts the account made since a moment (the owned timeline walks all of them).
select count(*)::integer from public.tweets
where tweet_id is not null and posted_at >= %(since)s::timestamptz;

-- name: pricing_config
-- The prices row as stored (validated by the caller with worker.config.models.PricingConfig).
select public.config_value('pricing');

-- name: name_authors
-- Names these authors' rows from any row that knows the username (free: a webhook event or an
-- earlier lookup named them); returns the authors nobody has named yet.
with asked as (
  select distinct a as author_id from unnest(%(ids)s::text[]) as a
), known as (
  select distinct on (r.author_id) r.author_id, r.author_username
  from public.replies r join asked on asked.author_id = r.author_id
  where r.author_username is not null
  order by r.author_id, r.ingested_at desc
), named as (
  update public.replies p set author_username = k.author_username
  from known k
  where p.author_id = k.author_id and p.author_username is null
  returning 1
)
select asked.author_id from asked
where not exists (select 1 from known k where k.author_id = asked.author_id);

-- name: set_author_usernames
-- Usernames X gave for authors (GET /2/users), on every row of theirs that has none.
update public.replies p set author_username = u.username
from jsonb_to_recordset(%(users)s) as u(author_id text, username text)
where p.author_id = u.author_id and p.author_username is null and u.username <> '';
