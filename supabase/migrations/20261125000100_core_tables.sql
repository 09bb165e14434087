-- chirpbase core tables: the seed's tables plus the operator's interface and the job queue.
--
-- Every table has RLS enabled and no policy, and its privileges are revoked from the API roles:
-- only the service role (BYPASSRLS) and the owner (`postgres`, the worker's login) touch rows.

-- configs: behaviour, one validated JSON document per key --------------------------------------
create table if not exists public.configs (
  id bigint generated always as identity primary key,
  key text not null unique,
  value jsonb not null default '{}'::jsonb,
  updated_at timestamptz not null default now()
);
comment on table public.configs is
  'Behaviour of the bot, one JSON document per key (persona, schedule, generation, engagement, quotas, alerts). Validated on write; changes apply live.';

-- tweets: what the account posted ---------------------------------------------------------------
create table if not exists public.tweets (
  id bigint generated always as identity primary key,
  tweet_id text unique,
  content text not null,
  image_url text,
  posted_at timestamptz,
  engagement jsonb not null default '{}'::jsonb,
  scheduled_tweet_id bigint,
  media_id text,
  alt_text text,
  created_at timestamptz not null default now()
);
create index if not exists tweets_posted_at_idx on public.tweets (posted_at desc);

-- replies: replies to and mentions of the account -----------------------------------------------
create table if not exists public.replies (
  id bigint generated always as identity primary key,
  reply_id text not null unique,
  original_tweet_id text,
  author_id text not null,
  content text not null default '',
  created_at timestamptz not null default now(),
  liked boolean not null default false,
  liked_at timestamptz,
  author_username text,
  conversation_id text,
  source text not null default 'poll' check (source in ('poll', 'webhook', 'manual')),
  ingested_at timestamptz not null default now()
);
create index if not exists replies_unliked_idx on public.replies (created_at) where not liked;

-- stats: one row per tweet per collection -------------------------------------------------------
create table if not exists public.stats (
  id bigint generated always as identity primary key,
  tweet_id text not null,
  likes integer not null default 0,
  retweets integer not null default 0,
  replies integer not null default 0,
  impressions integer,
  quotes integer,
  bookmarks integer,
  collected_at timestamptz not null default now()
);
create index if not exists stats_tweet_collected_idx on public.stats (tweet_id, collected_at desc);
create index if not exists stats_collected_idx on public.stats (collected_at);

-- scheduled_tweets: the operator's interface ----------------------------------------------------
create table if not exists public.scheduled_tweets (
  id bigint generated always as identity primary key,
  content text,
  topic text,
  with_image boolean not null default false,
  scheduled_for timestamptz not null default now(),
  status text not null default 'pending' check (status in (
    'pending', 'generating', 'awaiting_approval', 'approved', 'posting',
    'posted', 'failed', 'cancelled', 'rejected'
  )),
  tweet_id text,
  error text,
  image_path text,
  image_url text,
  alt_text text,
  job_id bigint,
  source text not null default 'operator' check (source in ('operator', 'schedule', 'cli')),
  post_started_at timestamptz,
  generated_at timestamptz,
  approved_at timestamptz,
  posted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists scheduled_tweets_status_idx on public.scheduled_tweets (status, scheduled_for);

-- jobs: the queue -------------------------------------------------------------------------------
create table if not exists public.job_kinds (
  kind text primary key,
  default_max_attempts integer not null default 5 check (default_max_attempts >= 1),
  description text not null
);
insert into public.job_kinds (kind, default_max_attempts, description) values
  ('generate_tweet', 4, 'Write a tweet (and image) for a scheduled_tweets row with a topic'),
  ('post_tweet', 8, 'Post a scheduled_tweets row to X exactly once'),
  ('like_reply', 6, 'Like a reply or mention of the account'),
  ('poll_mentions', 3, 'Fetch new mentions since the stored since_id'),
  ('collect_stats', 3, 'Collect engagement metrics for recent tweets'),
  ('reconcile_usage', 3, 'Reconcile local quota counters with X''s usage endpoint'),
  ('noop', 3, 'Does nothing; used by tests and benchmarks')
on conflict (kind) do update set description = excluded.description,
  default_max_attempts = excluded.default_max_attempts;

create table if not exists public.jobs (
  id bigint generated always as identity primary key,
  kind text not null,
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  status text not null default 'queued'
    check (status in ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
  priority integer not null default 0,
  -- Finite and within years 1-9999, so every client can read it (Python's datetime cannot hold
  -- infinity or year 10000: one such row would break every claim and wake-up query).
  run_at timestamptz not null default now()
    constraint jobs_run_at_in_range check (run_at > '0001-01-03 00:00:00+00' and run_at < '9999-12-29 00:00:00+00'),
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default 5 check (max_attempts >= 1),
  locked_by text,
  locked_until timestamptz,
  last_error text,
  result jsonb,
  dedupe_key text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);
comment on column public.jobs.priority is 'Higher runs first.';
comment on column public.jobs.dedupe_key is
  'At most one job per key while the job is retained; enqueue_job returns the existing id.';
-- The claim path: only queued rows are indexed, so a million finished jobs cost nothing.
create index if not exists jobs_claim_idx on public.jobs (priority desc, run_at, id)
  where status = 'queued';
-- The worker sleeps until the next future run_at it knows of.
create index if not exists jobs_queued_run_at_idx on public.jobs (run_at) where status = 'queued';
create unique index if not exists jobs_dedupe_key_idx on public.jobs (dedupe_key)
  where dedupe_key is not null;
create index if not exists jobs_running_lease_idx on public.jobs (locked_until)
  where status = 'running';
create index if not exists jobs_finished_idx on public.jobs (finished_at)
  where finished_at is not null;
create index if not exists jobs_scheduled_tweet_idx on public.jobs (((payload ->> 'scheduled_tweet_id')::bigint))
  where payload ? 'scheduled_tweet_id';
-- Status churn makes dead tuples; vacuum the hot table early.
alter table public.jobs set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02,
  fillfactor = 80);

-- x_account: the bot's own identity and polling cursor ------------------------------------------
create table if not exists public.x_account (
  id integer primary key default 1 check (id = 1),
  user_id text,
  username text,
  mentions_since_id text,
  webhook_last_event_at timestamptz,
  updated_at timestamptz not null default now()
);
insert into public.x_account (id) values (1) on conflict (id) do nothing;

-- api_usage: per month and endpoint -------------------------------------------------------------
create table if not exists public.api_usage (
  month date not null,
  endpoint text not null,
  calls bigint not null default 0,
  posts bigint not null default 0,
  reads bigint not null default 0,
  rate_limit_limit integer,
  rate_limit_remaining integer,
  rate_limit_reset timestamptz,
  openai_input_tokens bigint not null default 0,
  openai_output_tokens bigint not null default 0,
  images bigint not null default 0,
  estimated_cost_usd numeric(12, 6) not null default 0,
  updated_at timestamptz not null default now(),
  primary key (month, endpoint)
);

-- quota_usage: the counters quotas are enforced on (one row per month and resource) -----------
create table if not exists public.quota_usage (
  month date not null,
  resource text not null check (resource in ('posts', 'reads', 'openai_usd')),
  used numeric(14, 6) not null default 0,
  x_reported numeric(14, 6),
  reconciled_at timestamptz,
  updated_at timestamptz not null default now(),
  primary key (month, resource)
);

-- alerts ----------------------------------------------------------------------------------------
create table if not exists public.alerts (
  id bigint generated always as identity primary key,
  level text not null check (level in ('info', 'warning', 'critical')),
  kind text not null,
  dedupe_key text not null,
  message text not null,
  details jsonb not null default '{}'::jsonb,
  occurrences integer not null default 1,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  resolved_at timestamptz,
  notified_at timestamptz
);
create unique index if not exists alerts_open_key_idx on public.alerts (dedupe_key) where resolved_at is null;
create index if not exists alerts_created_idx on public.alerts (created_at desc);

-- Privacy: RLS on, no policies, API roles stripped -----------------------------------------------
do $$
declare
  t text;
  seq text;
begin
  foreach t in array array['configs', 'tweets', 'replies', 'stats', 'scheduled_tweets', 'job_kinds',
                           'jobs', 'x_account', 'api_usage', 'quota_usage', 'alerts']
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from anon, authenticated', t);
    execute format('grant all on table public.%I to service_role', t);
    seq := (select pg_catalog.pg_get_serial_sequence('public.' || t, a.attname)
            from pg_catalog.pg_attribute a
            where a.attrelid = ('public.' || t)::regclass and a.attidentity <> '' limit 1);
    if seq is not null then
      execute format('revoke all on sequence %s from anon, authenticated', seq);
    end if;
  end loop;
end
$$;
