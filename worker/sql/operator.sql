-- Named queries for operator actions (the `chirpbase` CLI, worker/ops/operator.py).
--
-- The CLI takes the same path a SQL user takes: it inserts and updates rows and calls the queue's
-- functions. Every rule (length limits, state transitions, what can be cancelled) is enforced by
-- the triggers and functions in supabase/migrations; these queries only ask.

-- Scheduled tweets -------------------------------------------------------------------------------

-- name: operator_schedule_tweet
insert into public.scheduled_tweets (content, scheduled_for, source, in_reply_to_tweet_id,
                                     poll_options, poll_duration_minutes)
values (%(content)s::text, coalesce(%(scheduled_for)s::timestamptz, now()), 'cli',
        %(in_reply_to_tweet_id)s::text, %(poll_options)s::text[], %(poll_duration_minutes)s::integer)
returning id, status, content, topic, with_image, scheduled_for, job_id, source, created_at,
          in_reply_to_tweet_id, poll_options, poll_duration_minutes;

-- name: operator_schedule_thread
-- A thread: the database makes one row per part and queues the first (migration threads).
insert into public.scheduled_tweets (thread, scheduled_for, source, in_reply_to_tweet_id)
values (%(thread)s::text[], coalesce(%(scheduled_for)s::timestamptz, now()), 'cli',
        %(in_reply_to_tweet_id)s::text)
returning id, status, thread, scheduled_for, source, created_at, in_reply_to_tweet_id;

-- name: operator_thread_parts
-- A thread's parts in order: its part rows once they exist; before that (a generated thread
-- written and awaiting approval) the texts in `thread`, with the thread's own status.
select p.thread_position, p.id, p.content, p.status, p.job_id, p.tweet_id, p.scheduled_for,
       p.posted_at, p.error
from public.scheduled_tweets p
where p.thread_of = %(id)s::bigint
union all
select t.position::integer, null::bigint, t.part, s.status, null::bigint, null::text,
       s.scheduled_for, null::timestamptz, null::text
from public.scheduled_tweets s
cross join lateral pg_catalog.unnest(s.thread) with ordinality as t(part, position)
where s.id = %(id)s::bigint and s.thread_of is null
  and not exists (select 1 from public.scheduled_tweets p where p.thread_of = s.id)
order by 1;

-- name: operator_schedule_generation
-- Without a topic, one of the persona's topics is drawn (as the generation cron does); without
-- an explicit image choice, generation.image decides.
insert into public.scheduled_tweets (topic, with_image, scheduled_for, source, thread_parts)
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
  'cli',
  %(thread_parts)s::integer)
returning id, status, content, topic, with_image, scheduled_for, job_id, source, created_at,
          thread_parts;

-- name: operator_set_scheduled_status
-- approve / reject / cancel: the before-update trigger decides whether the move is allowed.
update public.scheduled_tweets
set status = %(status)s::text
where id = %(id)s::bigint
returning id, status, content, topic, with_image, scheduled_for, job_id, tweet_id, error,
          updated_at, coalesce(cardinality(thread), thread_parts) as thread_size;

-- name: operator_scheduled_tweet
select id, status, content, topic, with_image, scheduled_for, job_id, tweet_id, error, image_url,
       alt_text, source, created_at, updated_at, generated_at, approved_at, posted_at, edited_at,
       thread, thread_parts, thread_of, thread_position, thread_tweet_ids,
       poll_options, poll_duration_minutes, in_reply_to_tweet_id
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
-- A thread is one line (its first part, and how far it got); its part rows are not listed.
select s.id, s.status,
       coalesce(s.content, case when s.thread is not null then pg_catalog.format(
         '%%s (thread: %%s of %%s parts posted)', s.thread[1],
         coalesce(cardinality(s.thread_tweet_ids), 0), cardinality(s.thread)) end) as content,
       s.topic, s.with_image, s.scheduled_for, s.job_id, s.error
from public.scheduled_tweets s
where s.status in ('pending', 'generating', 'awaiting_approval', 'approved', 'posting')
  and s.thread_of is null
order by s.scheduled_for, s.id
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
-- Spend so far in the billing cycle (api_usage, priced by operation as the calls were recorded;
-- the cycle follows X's cap_reset_day once X reported it), split into X and OpenAI, how much of
-- the cycle has passed, a straight-line projection to the cycle's end (left out in the first
-- ~2 % of a cycle, where it means nothing), and the budget (quotas.monthly_budget_usd) with
-- what is held of it now (spend_usd: recorded spend plus calls in flight). Used by `status`,
-- /health and the report.
with c as (
  select public.current_month() as month, b.starts, b.ends from public.billing_cycle() b
), s as (
  select c.month, c.starts, c.ends,
         coalesce(sum(u.estimated_cost_usd), 0)::float8 as spent_usd,
         coalesce(sum(u.estimated_cost_usd) filter (where u.endpoint like 'openai:%'), 0)::float8
           as openai_usd,
         coalesce(sum(u.posts), 0)::bigint as posts,
         coalesce(sum(u.reads), 0)::bigint as reads,
         (extract(epoch from now() - c.starts) / extract(epoch from c.ends - c.starts))::float8
           as month_elapsed
  from c left join public.api_usage u on u.month = c.month
  group by c.month, c.starts, c.ends
)
select s.month, s.starts as cycle_starts, s.ends as cycle_ends,
       s.spent_usd, s.spent_usd - s.openai_usd as x_usd, s.openai_usd, s.posts, s.reads,
       s.month_elapsed,
       case when s.month_elapsed > 0.02 then round((s.spent_usd / s.month_elapsed)::numeric, 2)::float8
       end as projected_usd,
       (select qc.cap from public.quota_caps() qc where qc.resource = 'spend_usd')::float8 as budget_usd,
       (select q.used from public.quota_usage q
        where q.month = s.month and q.resource = 'spend_usd')::float8 as budget_held_usd,
       public.x_access_tier() as plan,
       (select a.cap_reset_day from public.x_account a where a.id = 1) as cap_reset_day
from s;

-- name: operator_spend_by_operation
-- This billing cycle's X and OpenAI calls by endpoint and priced operation.
select endpoint, operation, calls, units, reads, posts, estimated_cost_usd::float8 as cost_usd
from public.api_usage
where month = public.current_month()
order by estimated_cost_usd desc, endpoint, operation;

-- name: operator_capabilities
-- What the configured X access tier allows, and why a capability is not available.
select c.capability, c.label, c.tiers, c.restricted_since, c.source,
       public.x_tier_allows(c.capability) as in_tier,
       public.x_capability_available(c.capability) as available,
       public.x_capability_notice(c.capability) as notice,
       p.paused_at
from public.x_capabilities c
left join public.x_capability_pauses p on p.capability = c.capability
order by c.capability;

-- name: operator_stats_read
-- How the latest stats collection read the account's posts, and what each way would have cost.
select j.finished_at, j.result -> 'source' as source, j.result -> 'estimated_usd' as estimated_usd,
       j.result -> 'tweets' as tweets
from public.jobs j
where j.kind = 'collect_stats' and j.status = 'succeeded' and j.result ? 'source'
order by j.finished_at desc
limit 1;

-- name: operator_reply_summoned
-- The post summoned the account (it mentions it or quotes one of its posts): a reply costs the
-- summoned price.
select public.x_summoned_reply(%(tweet_id)s::text);

-- name: operator_post_price
-- X's price of creating a post: the operation's price from configs.pricing.x.
select public.x_price(%(operation)s::text)::float8 as price;

-- name: operator_open_alerts
select id, level, kind, message, occurrences, created_at, last_seen_at
from public.alerts
where resolved_at is null
order by case level when 'critical' then 0 when 'warning' then 1 else 2 end, last_seen_at desc
limit %(limit)s::integer;

-- Edits (the CLI and the console) -----------------------------------------------------------------

-- name: operator_edit_scheduled_tweet
select id, status, content, topic, with_image, scheduled_for, job_id, image_url, alt_text,
       edited_at, updated_at
from public.edit_scheduled_tweet(%(id)s::bigint, %(content)s::text);

-- name: operator_edit_thread_part
-- One part of a generated thread awaiting approval (checked as the door checks a thread).
select id, status, thread, topic, scheduled_for, edited_at, updated_at
from public.edit_thread_part(%(id)s::bigint, %(part)s::integer, %(content)s::text);

-- name: operator_reschedule_scheduled_tweet
select id, status, content, topic, with_image, scheduled_for, job_id, updated_at
from public.reschedule_scheduled_tweet(%(id)s::bigint, %(scheduled_for)s::timestamptz);

-- Things awaiting a person -----------------------------------------------------------------------

-- name: operator_inbox
-- What awaits a person, soonest due first: generated tweets and threads awaiting approval (by
-- when they post) and reply drafts (by when they expire), through scheduled_tweets_status_idx
-- and reply_drafts_awaiting_idx. `kind` names the item type ("tweet", "thread", "reply"); a
-- thread carries its parts in order (`thread`), a reply the post it answers, a post its poll.
(select case when s.thread is not null or s.thread_parts is not null then 'thread'
             else 'tweet' end::text as kind,
        s.id, s.content, s.topic, s.image_url, s.alt_text, s.with_image,
        s.scheduled_for, s.generated_at, s.edited_at, s.updated_at, s.source,
        s.in_reply_to_tweet_id, null::text as in_reply_to_text,
        null::text as in_reply_to_author, null::timestamptz as expires_at,
        s.thread, s.poll_options, s.poll_duration_minutes,
        s.scheduled_for as due
 from public.scheduled_tweets s
 where s.status = 'awaiting_approval'
 order by s.scheduled_for, s.id
 limit %(limit)s::integer + %(offset)s::integer)
union all
(select 'reply'::text, d.id, d.content, null::text, null::text, null::text, false,
        null::timestamptz, d.created_at, d.edited_at, d.updated_at, 'reply'::text,
        d.reply_id, r.content, coalesce(r.author_username, d.author_username, r.author_id),
        d.expires_at, null::text[], null::text[], null::integer, d.expires_at
 from public.reply_drafts d
 join public.replies r on r.reply_id = d.reply_id
 where d.status = 'awaiting_approval' and d.expires_at > now()
 order by d.expires_at, d.id
 limit %(limit)s::integer + %(offset)s::integer)
order by due, kind, id
limit %(limit)s::integer offset %(offset)s::integer;

-- name: operator_inbox_state
-- How many items await, and a token that changes whenever the set or one of them changes (the
-- console's live inbox compares it).
with t as (
  select count(*) as n, max(s.updated_at) as at
  from public.scheduled_tweets s where s.status = 'awaiting_approval'
), r as (
  select count(*) as n, max(d.updated_at) as at
  from public.reply_drafts d where d.status = 'awaiting_approval' and d.expires_at > now()
)
select (t.n + r.n)::bigint as waiting,
       coalesce(t.at, 'epoch'::timestamptz)::text || ':' || t.n::text || '/'
         || coalesce(r.at, 'epoch'::timestamptz)::text || ':' || r.n::text as token
from t, r;

-- Reply drafts (the CLI's `replies`, the console's inbox) -------------------------------------------

-- name: operator_reply_drafts
-- Reply drafts, newest first, with the post each answers (status: all when null).
select d.id, d.status, d.content, d.reply_id, d.author_id,
       coalesce(r.author_username, d.author_username) as author_username,
       r.content as in_reply_to_text, d.conversation_id, d.expires_at, d.created_at,
       d.approved_at, d.decided_at, d.posted_at, d.scheduled_tweet_id, d.tweet_id, d.error,
       d.approval, d.drafts, d.edited_at
from public.reply_drafts d
join public.replies r on r.reply_id = d.reply_id
where %(status)s::text is null or d.status = %(status)s::text
order by d.id desc
limit %(limit)s::integer;

-- name: operator_reply_draft
select d.id, d.status, d.content, d.reply_id, d.author_id,
       coalesce(r.author_username, d.author_username) as author_username,
       r.content as in_reply_to_text, d.conversation_id, d.context, d.expires_at, d.created_at,
       d.approved_at, d.decided_at, d.posted_at, d.scheduled_tweet_id, d.tweet_id, d.error,
       d.approval, d.drafts, d.edited_at, d.updated_at
from public.reply_drafts d
join public.replies r on r.reply_id = d.reply_id
where d.id = %(id)s::bigint;

-- name: operator_approve_reply_draft
-- Approve (with new text when given): the trigger creates the reply's post, or expires the draft.
select id, status, content, reply_id, expires_at, scheduled_tweet_id, approved_at, updated_at
from public.approve_reply_draft(%(id)s::bigint, %(content)s::text);

-- name: operator_edit_reply_draft
select id, status, content, reply_id, expires_at, edited_at, updated_at
from public.edit_reply_draft(%(id)s::bigint, %(content)s::text);

-- name: operator_reject_reply_draft
select id, status, content, reply_id, decided_at, updated_at
from public.reject_reply_draft(%(id)s::bigint);

-- Calendar ---------------------------------------------------------------------------------------

-- name: operator_calendar_days
-- Posts per UTC day and status in [start, end); a thread counts once (its own row), not once
-- per part.
select (s.scheduled_for at time zone 'UTC')::date as day, s.status, count(*)::bigint as posts
from public.scheduled_tweets s
where s.scheduled_for >= %(start)s::timestamptz and s.scheduled_for < %(end)s::timestamptz
  and s.status <> 'rejected' and s.thread_of is null
group by 1, 2
order by 1, 2;

-- name: operator_calendar
-- The first `per_day` posts of each UTC day in [start, end), by time (cancelled and rejected
-- ones left out: the day counts still show them). A thread is one entry, its own row (status,
-- `thread_tweet_ids`), at its first part's time, with its parts in order (`parts`: the part rows
-- once made, else the texts in `thread` with the thread's status; none while being written).
select d.*,
       case when d.is_thread then coalesce(
         (select jsonb_agg(jsonb_build_object(
                   'position', p.thread_position, 'id', p.id, 'content', p.content,
                   'status', p.status, 'tweet_id', p.tweet_id, 'scheduled_for', p.scheduled_for,
                   'posted_at', p.posted_at, 'error', p.error) order by p.thread_position)
          from public.scheduled_tweets p where p.thread_of = d.id),
         (select jsonb_agg(jsonb_build_object('position', t.position, 'content', t.part,
                                              'status', d.status) order by t.position)
          from pg_catalog.unnest(d.thread) with ordinality as t(part, position)),
         '[]'::jsonb) end as parts
from (
  select s.id, s.status, s.content, s.topic, s.with_image, s.scheduled_for, s.tweet_id, s.error,
         s.source, s.image_url, s.poll_options, s.poll_duration_minutes, s.thread,
         coalesce(pg_catalog.cardinality(s.thread), s.thread_parts) as thread_size,
         (s.thread is not null or s.thread_parts is not null) as is_thread,
         (s.scheduled_for at time zone 'UTC')::date as day,
         row_number() over (partition by (s.scheduled_for at time zone 'UTC')::date
                            order by s.scheduled_for, s.id) as nth
  from public.scheduled_tweets s
  where s.scheduled_for >= %(start)s::timestamptz and s.scheduled_for < %(end)s::timestamptz
    and s.status not in ('cancelled', 'rejected')
    and s.thread_of is null
) d
where d.nth <= %(per_day)s::integer
order by d.scheduled_for, d.id;

-- name: operator_cron_available
select to_regclass('cron.job') is not null as available;

-- name: operator_cron_jobs
select jobname, schedule, active
from cron.job
where jobname like 'chirpbase-%'
order by jobname;

-- Activity ---------------------------------------------------------------------------------------

-- name: operator_recent_replies
-- Replies and mentions, newest first, with what became of each like: the like_reply job (by its
-- dedupe key) says liked, skipped and why, waiting, or failed with the error. No job means the
-- trigger did not ask for one (auto-like off, a skipped author, a plain mention with
-- like_mentions off, or the account's own reply).
select r.id, r.reply_id, r.original_tweet_id, r.author_id, r.author_username, r.content,
       r.created_at, r.liked, r.liked_at, r.source,
       (r.author_id = a.user_id) as own,
       exists (select 1 from public.tweets t where t.tweet_id = r.original_tweet_id) as to_our_tweet,
       j.status as like_status, j.result as like_result, left(j.last_error, 300) as like_error
from public.replies r
left join public.x_account a on a.id = 1
left join public.jobs j on j.dedupe_key = 'like_reply:' || r.reply_id
order by r.created_at desc, r.id desc
limit %(limit)s::integer;

-- Money ------------------------------------------------------------------------------------------

-- name: operator_usage_by_endpoint
-- This month's calls and estimated cost per endpoint (X endpoints and `openai:*` operations).
select u.endpoint, u.calls, u.posts, u.reads, u.openai_input_tokens, u.openai_output_tokens,
       u.images, u.estimated_cost_usd::float8 as estimated_cost_usd, u.rate_limit_limit,
       u.rate_limit_remaining, u.rate_limit_reset, u.updated_at
from public.api_usage u
where u.month = public.current_month()
order by u.estimated_cost_usd desc, u.calls desc, u.endpoint;

-- Alerts -----------------------------------------------------------------------------------------

-- name: operator_alerts
-- Open alerts first (most severe, then latest), then the latest resolved ones.
select id, level, kind, dedupe_key, message, details, occurrences, created_at, last_seen_at,
       resolved_at, details ->> 'resolution' as resolution
from (
  (select * from public.alerts where resolved_at is null
   order by case level when 'critical' then 0 when 'warning' then 1 else 2 end, last_seen_at desc
   limit %(limit)s::integer)
  union all
  (select * from public.alerts where resolved_at is not null
   order by resolved_at desc
   limit %(limit)s::integer)
) a
order by resolved_at is not null, case level when 'critical' then 0 when 'warning' then 1 else 2 end,
         coalesce(resolved_at, last_seen_at) desc;
