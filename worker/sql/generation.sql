-- Named queries for generate_tweet: claim a topic row, recent texts, write the result, OpenAI spend.

-- name: claim_generation
-- pending -> generating while the row still waits for its text; cancellation wins. A row an
-- earlier attempt of the same job left in `generating` (crash, retry later) is taken again: the
-- dedupe key 'generate_tweet:<id>' guarantees there is only one such job.
update public.scheduled_tweets
set status = 'generating', error = null
where id = %(id)s
  and status in ('pending', 'generating')
  and topic is not null
  and content is null
  and thread is null
returning id, topic, with_image, scheduled_for, thread_parts;

-- name: generation_row
select id, topic, content, status, scheduled_for from public.scheduled_tweets where id = %(id)s;

-- name: recent_texts
-- The account's recent texts, newest first: what it posted, and what is written but not posted
-- yet (so two drafts in flight cannot repeat each other). Each with its pg_trgm similarity to
-- %(text)s (1.0: the same trigrams; case and punctuation do not count).
with recent as (
  (select t.content, t.posted_at as at
   from public.tweets t
   where t.posted_at is not null  -- ordered by tweets_posted_at_idx
   order by t.posted_at desc
   limit %(limit)s)
  union all
  (select s.content, coalesce(s.generated_at, s.created_at) as at
   from public.scheduled_tweets s
   where s.content is not null
     and s.id <> %(id)s
     and s.tweet_id is null
     and s.status in ('pending', 'generating', 'awaiting_approval', 'approved', 'posting')
   order by coalesce(s.generated_at, s.created_at) desc
   limit %(limit)s)
)
select r.content, extensions.similarity(r.content, %(text)s)::float8 as similarity
from recent r
order by r.at desc
limit %(limit)s;

-- name: finish_generation
-- Text (and image) written: wait for an operator, or go back to pending and queue the post, in
-- one statement so a crash cannot leave one without the other. A row cancelled meanwhile stays
-- cancelled (no row returned).
update public.scheduled_tweets s
set content = %(content)s,
    image_path = %(image_path)s,
    image_url = %(image_url)s,
    alt_text = %(alt_text)s,
    generated_at = now(),
    error = null,
    status = case when %(require_approval)s then 'awaiting_approval' else 'pending' end,
    job_id = case
      when %(require_approval)s then s.job_id
      else public.enqueue_job('post_tweet', jsonb_build_object('scheduled_tweet_id', s.id),
                              greatest(s.scheduled_for, now()), 0, 'post_tweet:' || s.id, null)
    end
where s.id = %(id)s and s.status = 'generating'
returning s.status, s.job_id;

-- name: finish_thread_generation
-- A generated thread's parts (and part 1's image): as finish_generation, with the parts in
-- `thread`; the database then makes one row per part and queues the first (migration threads).
update public.scheduled_tweets s
set thread = %(thread)s::text[],
    image_path = %(image_path)s,
    image_url = %(image_url)s,
    alt_text = %(alt_text)s,
    generated_at = now(),
    error = null,
    status = case when %(require_approval)s then 'awaiting_approval' else 'pending' end
where s.id = %(id)s and s.status = 'generating'
returning s.status, s.job_id;

-- name: enqueue_generated_post
-- Repair path: the text was written but the job did not record its success (crash). Same job,
-- same dedupe key as finish_generation, so this never makes a second post job.
select public.enqueue_job('post_tweet', jsonb_build_object('scheduled_tweet_id', %(id)s::bigint),
                          greatest(%(scheduled_for)s::timestamptz, now()), 0,
                          'post_tweet:' || %(id)s::bigint, null);

-- name: release_generation
-- Not now (OpenAI budget, rate limit): back to pending with the reason; the job waits.
update public.scheduled_tweets
set status = 'pending', error = %(error)s
where id = %(id)s and status = 'generating';

-- name: fail_generation
-- Nothing half-made is posted: the row ends failed with the reason, and no post job exists.
update public.scheduled_tweets
set status = 'failed', error = %(error)s
where id = %(id)s and status in ('pending', 'generating');

-- name: reserve_openai_usd
-- Take an estimated cost from the monthly OpenAI budget and the overall budget (X and OpenAI,
-- quotas.monthly_budget_usd) before a call, both or neither; false (plus a critical alert
-- raised by consume_quota) when it does not fit.
select public.reserve_usd('openai_usd', %(amount)s::numeric);

-- name: settle_openai_usd
-- Replace a reservation by what the call cost, in both budgets. An overrun is charged
-- unconditionally: that money is already spent.
select public.settle_usd('openai_usd', %(reserved)s::numeric, %(actual)s::numeric);

-- name: record_openai_usage
select public.record_api_usage(
  endpoint => %(endpoint)s,
  operation => %(operation)s::text,
  units => %(calls)s::integer,
  calls => %(calls)s::integer,
  openai_input_tokens => %(input_tokens)s::integer,
  openai_output_tokens => %(output_tokens)s::integer,
  images => %(images)s::integer,
  estimated_cost_usd => %(cost_usd)s::numeric);

-- name: similarity_to_each
-- pg_trgm similarity of %(text)s to each of %(others)s (the parts of a thread written so far).
select o.other, extensions.similarity(o.other, %(text)s)::float8 as similarity
from unnest(%(others)s::text[]) as o(other)
order by 2 desc
limit 1;
