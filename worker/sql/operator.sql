-- Named queries for operator actions (the `chirpbase` CLI, worker/ops/operator.py).
--
-- The CLI takes the same path a SQL user takes: it inserts and updates rows and calls the queue's
-- functions. Every rule (length limits, state transitions, what can be cancelled) is enforced by
-- the triggers and functions in supabase/migrations; these queries only ask.

-- Scheduled tweets -------------------------------------------------------------------------------

-- name: operator_schedule_tweet
insert into public.scheduled_tweets (content, scheduled_for, source)
values (%(content)s::text, coalesce(%(scheduled_for)s::timestamptz, now()), 'cli')
returning id, status, content, topic, with_image, scheduled_for, job_id, source, created_at;

-- name: operator_schedule_generation
-- Without a topic, one of the persona's topics is drawn (as the generation cron does); without
-- an explicit image choice, generation.image decides.
insert into public.scheduled_tweets (topic, with_image, scheduled_for, source)
values (
  coalesce(
    %(topic)s::text,
    (select t.topic
     from jsonb_array_elements_text(
            case when jsonb_typeof(public.config_value('persona') -> 'topics') = 'array'
                 then public.config_value('persona') -> 'topics' else '[]'::jsonb end) as t(topic)
     where btrim(t.topic) <> ''
     order by random()
     limit 1),
    'anything in character'),
  coalesce(%(with_image)s::boolean,
           (public.config_value('generation') ->> 'image')::boolean,
           false),
  coalesce(%(scheduled_for)s::timestamptz, now()),
  'cli')
returning id, status, content, topic, with_image, scheduled_for, job_id, source, created_at;

-- name: operator_set_scheduled_status
-- approve / reject / cancel: the before-update trigger decides whether the move is allowed.
update public.scheduled_tweets
set status = %(status)s::text
where id = %(id)s::bigint
returning id, status, content, topic, with_image, scheduled_for, job_id, tweet_id, error,
          updated_at;

-- name: operator_scheduled_tweet
select id, status, content, topic, with_image, scheduled_for, job_id, tweet_id, error, image_url,
       alt_text, source, created_at, updated_at, generated_at, approved_at, posted_at
from public.scheduled_tweets
where id = %(id)s::bigint;

-- Jobs -------------------------------------------------------------------------------------------

-- name: operator_list_jobs
select id, kind, status, priority, run_at, attempts, max_attempts, locked_by, locked_until,
       left(last_error, 300) as last_error, dedupe_key, created_at, updated_at, finished_at
from public.jobs
where (%(status)s::text is null or status = %(status)s::text)
  and (%(kind)s::text is null or kind = %(kind)s::text)
order by id desc
limit %(limit)s::integer;

-- name: operator_get_job
select id, kind, status, priority, run_at, attempts, max_attempts, locked_by, locked_until,
       last_error, payload, result, dedupe_key, created_at, updated_at, started_at, finished_at
from public.jobs
where id = %(id)s::bigint;

-- name: operator_job_kinds
select kind, default_max_attempts, description from public.job_kinds order by kind;

-- name: operator_retry_job
select public.retry_job(%(id)s::bigint);

-- name: operator_cancel_job
select public.cancel_job(%(id)s::bigint);

-- Configs ----------------------------------------------------------------------------------------

-- name: operator_get_configs
select key, value, updated_at
from public.configs
where %(key)s::text is null or key = %(key)s::text
order by key;

-- name: operator_set_config
-- The configs_validate trigger checks the shape again; configs_after_change reschedules pg_cron.
insert into public.configs (key, value)
values (%(key)s::text, %(value)s::jsonb)
on conflict (key) do update set value = excluded.value
returning key, value, updated_at;

-- Status snapshot --------------------------------------------------------------------------------

-- name: operator_queue_depth
select kind, status, jobs, oldest_run_at, extract(epoch from max_lag)::float8 as max_lag_s
from public.queue_depth
order by kind, status;

-- name: operator_upcoming_posts
select id, status, content, topic, with_image, scheduled_for, job_id, error
from public.scheduled_tweets
where status in ('pending', 'generating', 'awaiting_approval', 'approved', 'posting')
order by scheduled_for, id
limit %(limit)s::integer;

-- name: operator_recent_posts
-- Latest stats per tweet through the (tweet_id, collected_at desc) index: one probe per tweet.
select t.id, t.tweet_id, t.content, t.image_url, t.posted_at,
       s.likes, s.retweets, s.replies, s.impressions, s.collected_at
from public.tweets t
left join lateral (
  select x.likes, x.retweets, x.replies, x.impressions, x.collected_at
  from public.stats x
  where x.tweet_id = t.tweet_id
  order by x.collected_at desc
  limit 1
) s on true
where t.posted_at is not null
order by t.posted_at desc
limit %(limit)s::integer;

-- name: operator_quota_use
select resource, month, used::float8 as used, cap::float8 as cap, percent::float8 as percent,
       alert_threshold::float8 as alert_threshold
from public.quota_use
order by resource;

-- name: operator_month_spend
-- Estimated spend so far this month (api_usage, as the clients record it), split into X and
-- OpenAI, how much of the month has passed, and a straight-line projection to month end (left
-- out in the first ~15 hours of a month, where it means nothing). Used by `status` and /health.
with m as (
  select public.current_month() as month,
         (public.current_month()::timestamp at time zone 'UTC') as starts,
         ((public.current_month() + interval '1 month')::timestamp at time zone 'UTC') as ends
), s as (
  select m.month,
         coalesce(sum(u.estimated_cost_usd), 0)::float8 as spent_usd,
         coalesce(sum(u.estimated_cost_usd) filter (where u.endpoint like 'openai:%'), 0)::float8
           as openai_usd,
         coalesce(sum(u.posts), 0)::bigint as posts,
         coalesce(sum(u.reads), 0)::bigint as reads,
         (extract(epoch from now() - m.starts) / extract(epoch from m.ends - m.starts))::float8
           as month_elapsed
  from m left join public.api_usage u on u.month = m.month
  group by m.month, m.starts, m.ends
)
select s.month, s.spent_usd, s.spent_usd - s.openai_usd as x_usd, s.openai_usd, s.posts, s.reads,
       s.month_elapsed,
       case when s.month_elapsed > 0.02 then round((s.spent_usd / s.month_elapsed)::numeric, 2)::float8
       end as projected_usd,
       public.config_value('quotas') ->> 'plan' as plan
from s;

-- name: operator_open_alerts
select id, level, kind, message, occurrences, created_at, last_seen_at
from public.alerts
where resolved_at is null
order by case level when 'critical' then 0 when 'warning' then 1 else 2 end, last_seen_at desc
limit %(limit)s::integer;
