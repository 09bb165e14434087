-- X access tiers and what each allows (late 2026), and the `skipped` job outcome.
--
-- The access tier is `configs.quotas.plan` (pay_per_use, basic, pro, enterprise; `free` is kept
-- for rows written before X retired it). What a tier may do is one table, `x_capabilities`,
-- read by the like trigger, the scheduled_tweets door, the worker, `doctor` and `status`:
--   * likes and quote posts were removed from every self-serve tier on 2026-04-20
--     (docs.x.com changelog, entry of 2026-04-16, "X API pricing update");
--   * since 2026-02-23 a self-serve reply is allowed only to a post whose author summoned the
--     account: mentioned it or quoted one of its posts (changelog, "Addressing LLM-generated
--     spam"). Enterprise access keeps all three.
-- When X refuses a capability anyway (403 client-forbidden), the worker pauses it
-- (`x_capability_pauses`, one alert); its jobs end `skipped`: not dead, not retried.

-- Jobs: `skipped` is a terminal outcome for work that must not be attempted. -------------------
alter table public.jobs drop constraint if exists jobs_status_check;
alter table public.jobs add constraint jobs_status_check
  check (status in ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled', 'skipped'));
comment on column public.jobs.status is
  'queued -> running -> succeeded | failed | dead | cancelled | skipped. skipped: the work must '
  'not be attempted (a capability the X access tier lacks or X paused); result.skipped says why.';

-- skip_job: end a held job as skipped, with the reason in result.skipped. False when not held.
create or replace function public.skip_job(
  id bigint,
  worker_id text,
  reason text,
  result jsonb default null
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  update public.jobs j
  set status = 'skipped',
      result = coalesce(skip_job.result, '{}'::jsonb) || jsonb_build_object('skipped', left(skip_job.reason, 1000)),
      last_error = null,
      locked_by = null,
      locked_until = null,
      finished_at = now(),
      updated_at = now()
  where j.id = skip_job.id and j.status = 'running' and j.locked_by = skip_job.worker_id;
  return found;
end
$$;

-- retry_job: a skipped job can be run again too (after the access tier changed, say).
create or replace function public.retry_job(id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with r as (
    update public.jobs j
    set status = 'queued', attempts = 0, run_at = now(), finished_at = null, updated_at = now()
    where j.id = retry_job.id and j.status in ('dead', 'failed', 'cancelled', 'skipped')
    returning 1
  )
  select exists (select 1 from r);
$$;

-- prune_finished_jobs: skipped jobs are finished jobs.
create or replace function public.prune_finished_jobs(older_than interval default interval '7 days')
returns integer
language sql
security definer
set search_path = ''
as $$
  with d as (
    delete from public.jobs j
    where j.status in ('succeeded', 'cancelled', 'dead', 'failed', 'skipped')
      and j.finished_at < now() - prune_finished_jobs.older_than
    returning 1
  )
  select count(*)::integer from d;
$$;

-- Capabilities by access tier -------------------------------------------------------------------
create table if not exists public.x_capabilities (
  capability text primary key,
  label text not null,
  tiers text[] not null,
  restricted_since date,
  source text not null
);
comment on table public.x_capabilities is
  'What each X access tier may do (tiers), since when the others may not, and the page that says so.';
insert into public.x_capabilities (capability, label, tiers, restricted_since, source) values
  ('posts', 'posts', '{free,pay_per_use,basic,pro,enterprise}', null,
   'https://docs.x.com/x-api/getting-started/pricing'),
  ('media', 'image uploads and alt text', '{free,pay_per_use,basic,pro,enterprise}', null,
   'https://docs.x.com/x-api/getting-started/pricing'),
  ('reads', 'mentions, timelines and post lookups', '{free,pay_per_use,basic,pro,enterprise}', null,
   'https://docs.x.com/x-api/getting-started/pricing'),
  ('summoned_replies', 'replies to posts that mentioned or quoted the account',
   '{free,pay_per_use,basic,pro,enterprise}', null, 'https://docs.x.com/changelog (2026-02-23)'),
  ('unsummoned_replies', 'replies to posts that did not mention or quote the account',
   '{enterprise}', '2026-02-23', 'https://docs.x.com/changelog (2026-02-23, Addressing LLM-generated spam)'),
  ('likes', 'likes', '{enterprise}', '2026-04-20',
   'https://docs.x.com/changelog (2026-04-16, X API pricing update, effective 2026-04-20)'),
  ('quotes', 'quote posts', '{enterprise}', '2026-04-20',
   'https://docs.x.com/changelog (2026-04-16, X API pricing update, effective 2026-04-20)')
on conflict (capability) do update set label = excluded.label, tiers = excluded.tiers,
  restricted_since = excluded.restricted_since, source = excluded.source;

-- Capabilities X refused although the configured tier should have them (or a tier it does not
-- have was configured). Cleared when configs.quotas.plan changes.
create table if not exists public.x_capability_pauses (
  capability text primary key references public.x_capabilities (capability),
  tier text not null,
  reason text not null,
  details jsonb not null default '{}'::jsonb,
  paused_at timestamptz not null default now()
);
comment on table public.x_capability_pauses is
  'Capabilities paused after X refused them (403 client-forbidden); jobs needing one end skipped.';

do $$
declare
  t text;
begin
  foreach t in array array['x_capabilities', 'x_capability_pauses']
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from anon, authenticated', t);
    execute format('grant all on table public.%I to service_role', t);
  end loop;
end
$$;

-- x_access_tier: the configured tier (quotas.plan), pay_per_use when unset.
create or replace function public.x_access_tier()
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(nullif(public.config_value('quotas') ->> 'plan', ''), 'pay_per_use');
$$;

-- x_tier_allows: does `tier` (default: the configured one) include `capability`?
create or replace function public.x_tier_allows(capability text, tier text default null)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select coalesce(x_tier_allows.tier, public.x_access_tier()) = any (c.tiers)
     from public.x_capabilities c where c.capability = x_tier_allows.capability),
    false);
$$;

-- x_capability_available: allowed by the configured tier and not paused.
create or replace function public.x_capability_available(capability text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select public.x_tier_allows(x_capability_available.capability)
     and not exists (select 1 from public.x_capability_pauses p
                     where p.capability = x_capability_available.capability);
$$;

-- x_capability_notice: one line on why a capability is not available on the configured tier.
create or replace function public.x_capability_notice(capability text)
returns text
language sql
stable
security definer
set search_path = ''
as $$
  select case
    when p.capability is not null then
      format('X refused %s for this account (%s); paused since %s until configs.quotas.plan changes',
             c.label, p.reason, to_char(p.paused_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
    when not (public.x_access_tier() = any (c.tiers)) then
      format('%s are not available on X access tier %s%s (only on %s; %s)', c.label,
             public.x_access_tier(),
             case when c.restricted_since is not null
                  then ' since ' || to_char(c.restricted_since, 'YYYY-MM-DD') else '' end,
             array_to_string(c.tiers, ', '), c.source)
  end
  from public.x_capabilities c
  left join public.x_capability_pauses p on p.capability = c.capability
  where c.capability = x_capability_notice.capability;
$$;

-- pause_x_capability: X refused a capability. Pauses it and raises one alert naming it, the tier
-- and the date X removed it from self-serve access. True when this call paused it.
create or replace function public.pause_x_capability(capability text, detail text default null)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  c public.x_capabilities;
  current_tier text := public.x_access_tier();
  paused boolean;
begin
  select * into c from public.x_capabilities x where x.capability = pause_x_capability.capability;
  if not found then
    raise exception 'unknown X capability "%"', pause_x_capability.capability using errcode = '22023';
  end if;
  insert into public.x_capability_pauses (capability, tier, reason, details)
  values (c.capability, current_tier, coalesce(left(pause_x_capability.detail, 300), 'refused by X'),
          jsonb_build_object('detail', left(pause_x_capability.detail, 1000)))
  on conflict (capability) do nothing;
  paused := found;
  if paused then
    perform public.raise_alert('critical', 'x_capability_refused', 'x_capability:' || c.capability,
      format('X refused %s on access tier %s (403 %s). %s',
             c.label, current_tier, coalesce(left(pause_x_capability.detail, 200), 'client-forbidden'),
             case when c.restricted_since is not null
                  then format('X removed %s from self-serve access (pay_per_use, basic, pro) on %s; only %s keeps them (%s). ',
                              c.label, to_char(c.restricted_since, 'YYYY-MM-DD'),
                              array_to_string(c.tiers, ', '), c.source)
                  else '' end
             || format('%s jobs are skipped, not retried, until configs.quotas.plan changes.', c.label)),
      jsonb_build_object('capability', c.capability, 'tier', current_tier,
                         'restricted_since', c.restricted_since, 'source', c.source));
  end if;
  return paused;
end
$$;

-- Likes: only where the tier has them and X has not refused them, and only when the operator
-- asked. X's developer guidelines (docs.x.com/developer-guidelines) say likes "must be directly
-- initiated by the authenticated user" and that apps "may not offer auto-like features": so
-- auto_like is off unless set (an Enterprise operator answers for it under X's agreement). A
-- project whose tier has no likes had auto_like = true to no effect: it now says false, and
-- turning likes on after moving to Enterprise is a deliberate change.
update public.configs
set value = jsonb_set(value, '{auto_like}', 'false'::jsonb)
where key = 'engagement'
  and value -> 'auto_like' = 'true'::jsonb
  and not public.x_tier_allows('likes');

-- Likes: only where the tier has them and X has not refused them. -------------------------------
create or replace function public.replies_enqueue_like()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  engagement jsonb := public.config_value('engagement');
  bot_id text := (select a.user_id from public.x_account a where a.id = 1);
begin
  if coalesce((engagement ->> 'auto_like')::boolean, false)
     and public.x_capability_available('likes')
     and not new.liked
     and new.author_id is distinct from bot_id
     and not coalesce(engagement -> 'skip_authors', '[]'::jsonb) ? new.author_id
     -- Plain mentions are liked only when like_mentions is on; replies to our tweets always.
     and (coalesce((engagement ->> 'like_mentions')::boolean, true)
          or exists (select 1 from public.tweets t where t.tweet_id = new.original_tweet_id)) then
    perform public.enqueue_job('like_reply', jsonb_build_object('reply_id', new.reply_id),
                               now(), 10, 'like_reply:' || new.reply_id, null);
  end if;
  return new;
end
$$;

-- A change of access tier lifts every pause (the new tier is checked before anything is tried).
create or replace function public.configs_after_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  p record;
begin
  if new.key = 'schedule' then
    perform public.sync_schedules();
  end if;
  if new.key = 'quotas' and (tg_op = 'INSERT'
       or (old.value ->> 'plan') is distinct from (new.value ->> 'plan')) then
    for p in delete from public.x_capability_pauses returning capability, tier loop
      perform public.close_alert('x_capability:' || p.capability,
        format('access tier changed from %s to %s', p.tier, public.x_access_tier()));
    end loop;
  end if;
  return null;
end
$$;

-- Replies and quote posts on scheduled_tweets ----------------------------------------------------
alter table public.scheduled_tweets add column if not exists in_reply_to_tweet_id text;
alter table public.scheduled_tweets add column if not exists quote_tweet_id text;
comment on column public.scheduled_tweets.in_reply_to_tweet_id is
  'Post this as a reply to that post. On self-serve access the post must have summoned the account '
  '(be in `replies`, i.e. mention it or reply to it) or be one of its own (`tweets`).';
comment on column public.scheduled_tweets.quote_tweet_id is
  'Post this as a quote of that post (Enterprise access only since 2026-04-20).';

-- x_summoned_by: X's summoned rule as far as chirpbase can see it: the post mentioned or replied
-- to the account (a `replies` row: that is what the mentions timeline and Activity events bring),
-- or it is the account's own post (a thread). A quote of the account's post summons it too, but
-- chirpbase does not ingest quotes, so a reply to one is refused (the safe side).
create or replace function public.x_summoned_by(tweet_id text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select 1 from public.replies r where r.reply_id = x_summoned_by.tweet_id)
      or exists (select 1 from public.tweets t where t.tweet_id = x_summoned_by.tweet_id);
$$;

create or replace function public.scheduled_tweets_check_x_access()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.in_reply_to_tweet_id := nullif(btrim(new.in_reply_to_tweet_id), '');
  new.quote_tweet_id := nullif(btrim(new.quote_tweet_id), '');
  if new.in_reply_to_tweet_id is not null and new.in_reply_to_tweet_id !~ '^[0-9]{1,25}$' then
    raise exception 'scheduled_tweets: in_reply_to_tweet_id must be a post id (digits), got "%"',
      left(new.in_reply_to_tweet_id, 40) using errcode = '23514';
  end if;
  if new.quote_tweet_id is not null and new.quote_tweet_id !~ '^[0-9]{1,25}$' then
    raise exception 'scheduled_tweets: quote_tweet_id must be a post id (digits), got "%"',
      left(new.quote_tweet_id, 40) using errcode = '23514';
  end if;
  if tg_op = 'UPDATE' and new.status in ('posted', 'failed', 'cancelled', 'rejected') then
    return new;  -- final rows are not re-checked
  end if;
  -- X bills a post with a URL at $0.20 instead of $0.015 (docs.x.com pricing): say so when it
  -- is scheduled. The same URL rule as the length door (a scheme, or a bare domain on a common
  -- TLD); the worker prices the post exactly (twitter-text) when it posts it.
  if tg_op = 'INSERT' and new.content ~* '(https?://[^\s]|(^|[\s(])([a-z0-9-]+\.)+(com|org|net|io|dev|co|ai|app|me|ly|gg|xyz|info|edu|gov)($|[\s/),.!?]))' then
    raise notice 'scheduled_tweets: this post contains a URL, which X bills at $% (configs.pricing.x.post_with_url) instead of $% for a post without one',
      public.x_price('post_with_url'), public.x_price('post');
  end if;
  if new.quote_tweet_id is not null and not public.x_tier_allows('quotes') then
    raise exception 'scheduled_tweets: %', public.x_capability_notice('quotes')
      using errcode = '23514', hint = 'Post it without quote_tweet_id, or set configs.quotas.plan to your real tier.';
  end if;
  if new.in_reply_to_tweet_id is not null and not public.x_tier_allows('unsummoned_replies')
     and not public.x_summoned_by(new.in_reply_to_tweet_id) then
    raise exception 'scheduled_tweets: X allows a reply on access tier % only to a post that summoned the account (mentioned it or quoted one of its posts), since 2026-02-23; post % is neither in replies nor one of the account''s own',
      public.x_access_tier(), new.in_reply_to_tweet_id
      using errcode = '23514',
            hint = 'Reply to a post from the replies table (mentions and replies to the account).';
  end if;
  return new;
end
$$;

drop trigger if exists scheduled_tweets_check_x_access on public.scheduled_tweets;
create trigger scheduled_tweets_check_x_access
  before insert or update of in_reply_to_tweet_id, quote_tweet_id on public.scheduled_tweets
  for each row execute function public.scheduled_tweets_check_x_access();

-- Function privileges: only the owner and the service role. -----------------------------------
do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('skip_job', 'retry_job', 'prune_finished_jobs', 'x_access_tier',
                        'x_tier_allows', 'x_capability_available', 'x_capability_notice',
                        'pause_x_capability', 'replies_enqueue_like', 'configs_after_change',
                        'x_summoned_by', 'scheduled_tweets_check_x_access')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
