-- Reply drafts: answers to people who summoned the account, written by the worker with OpenAI and
-- posted only when a person approves them (or, with X's written approval, automatically).
--
-- X's rules for automated replies (docs.x.com/developer-guidelines, "Automation rules" and
-- "AI-Generated Content & Replies"; x-api/posts/manage-tweets/integrate.mdx, "Reply
-- restrictions"): reply only when the author summoned the account (mentioned it or quoted one of
-- its posts), at most one reply per interaction, honour opt-outs ("If a user says 'stop',
-- stop"), and AI-written replies need X's prior approval.
--
-- The shape:
--   replies (a mention or reply, ingested by polling or webhook)
--     --after insert--> opt-out phrase?  record it in reply_opt_outs, cancel the author's drafts
--                       else the cheap guards pass?  one `draft_reply` job (dedupe by reply id)
--   draft_reply (worker) --> record_reply_draft(): one reply_drafts row per replies row,
--                            status awaiting_approval, expires_at
--   reply_drafts: approve (update status, or approve_reply_draft) --> a scheduled_tweets row
--                 (content, in_reply_to_tweet_id = the mention, source 'reply', reply_draft_id)
--                 that post_tweet posts exactly once like any post; its outcome (posted, failed,
--                 cancelled) is mirrored back onto the draft.
--
-- The guards live here where they are cheap (the trigger does not enqueue; record_reply_draft
-- refuses under a lock; one open draft per conversation turn by a unique index) and again in the
-- worker before it spends anything (worker/conversation/policy.py).

-- replies: what ingestion now records about each post ----------------------------------------
alter table public.replies add column if not exists mentions_account boolean;
alter table public.replies add column if not exists quoted_tweet_id text;
alter table public.replies add column if not exists lang text;
comment on column public.replies.mentions_account is
  'The post''s entities mention the account (in its text, note or leading reply handles). False '
  'for a reply to the account''s post that left its handle out: X does not count that as a summons. '
  'Null for rows ingested before chirpbase recorded it (treated as a mention).';
comment on column public.replies.quoted_tweet_id is
  'The post this one quotes (referenced_tweets type quoted), when any.';
comment on column public.replies.lang is 'X''s language of the post (BCP 47, "und" when undetermined).';

-- x_summoned_reply: the post is in `replies` and summoned the account: it mentions it, or quotes
-- one of the account's posts (integrate.mdx "Reply restrictions").
create or replace function public.x_summoned_reply(tweet_id text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.replies r
    where r.reply_id = x_summoned_reply.tweet_id
      and (r.mentions_account is not false
           or exists (select 1 from public.tweets t where t.tweet_id = r.quoted_tweet_id)));
$$;

-- x_summoned_by: as before (a summoning post, or the account's own post for a thread), now with
-- the summons read from what ingestion recorded.
create or replace function public.x_summoned_by(tweet_id text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select public.x_summoned_reply(x_summoned_by.tweet_id)
      or exists (select 1 from public.tweets t where t.tweet_id = x_summoned_by.tweet_id);
$$;

-- The `conversation` config ---------------------------------------------------------------------
insert into public.configs (key, value) values
  ('conversation', '{
     "enabled": false,
     "approval": "required",
     "x_ai_reply_approval_granted": false,
     "daily_cap": 50,
     "per_author_daily_cap": 3,
     "min_author_followers": 0,
     "min_author_account_age_days": 0,
     "quiet_hours": null,
     "languages": [],
     "skip_authors": [],
     "opt_out_phrases": [],
     "expire_after_minutes": 240,
     "reply_window_hours": 24,
     "max_attempts": 3,
     "similarity_threshold": 0.6,
     "recent_window": 50
   }'::jsonb)
on conflict (key) do nothing;

create or replace function public.validate_conversation_config(v jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  k constant text := 'conversation';
  q jsonb := v -> 'quiet_hours';
  field text;
begin
  perform public.config_check_type(k, v, 'enabled', 'boolean');
  perform public.config_check_type(k, v, 'approval', 'string');
  perform public.config_check_type(k, v, 'x_ai_reply_approval_granted', 'boolean');
  if v ? 'approval' and (v ->> 'approval') not in ('required', 'auto') then
    raise exception 'configs.conversation.approval must be "required" or "auto", got "%"', v ->> 'approval'
      using errcode = '22023';
  end if;
  if v ->> 'approval' = 'auto' and (v -> 'x_ai_reply_approval_granted') is distinct from 'true'::jsonb then
    raise exception 'configs.conversation.approval "auto" needs "x_ai_reply_approval_granted": true: X requires its prior approval before AI-written replies are posted without a person approving each one'
      using errcode = '22023',
            hint = 'Ask X first (help.x.com/forms/platform, docs.x.com/developer-guidelines); until then keep "approval": "required".';
  end if;
  perform public.config_check_whole_number(k, v, 'daily_cap', 0, 10000);
  perform public.config_check_whole_number(k, v, 'per_author_daily_cap', 0, 1000);
  perform public.config_check_whole_number(k, v, 'min_author_followers', 0, 1e9);
  perform public.config_check_whole_number(k, v, 'min_author_account_age_days', 0, 36500);
  perform public.config_check_whole_number(k, v, 'expire_after_minutes', 5, 10080);
  perform public.config_check_whole_number(k, v, 'reply_window_hours', 1, 168);
  perform public.config_check_whole_number(k, v, 'max_attempts', 1, 10);
  perform public.config_check_number(k, v, 'similarity_threshold', 0, 1);
  perform public.config_check_whole_number(k, v, 'recent_window', 0, 500);
  foreach field in array array['languages', 'skip_authors', 'opt_out_phrases'] loop
    perform public.config_check_type(k, v, field, 'array');
    if jsonb_typeof(v -> field) = 'array'
       and exists (select 1 from jsonb_array_elements(v -> field) e where jsonb_typeof(e) <> 'string') then
      raise exception 'configs.conversation.% must be a list of strings', field using errcode = '22023';
    end if;
  end loop;
  perform public.config_check_type(k, v, 'quiet_hours', 'object', true);
  if jsonb_typeof(q) = 'object' then
    foreach field in array array['start', 'end'] loop
      if coalesce(q ->> field, '') !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' then
        raise exception 'configs.conversation.quiet_hours.% must be a time like "22:00", got "%"',
          field, coalesce(q ->> field, 'nothing') using errcode = '22023';
      end if;
    end loop;
    perform public.config_check_type('conversation.quiet_hours', q, 'timezone', 'string');
    if q ? 'timezone' and not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = q ->> 'timezone') then
      raise exception 'configs.conversation.quiet_hours.timezone must be an IANA time zone like "Europe/Paris", got "%"',
        q ->> 'timezone' using errcode = '22023';
    end if;
  end if;
end
$$;

-- validate_config: as before, with `conversation`.
create or replace function public.validate_config(key text, value jsonb)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  k text := validate_config.key;
  v jsonb := validate_config.value;
begin
  if k not in ('persona', 'schedule', 'generation', 'engagement', 'quotas', 'alerts', 'pricing',
               'conversation') then
    return;  -- keys chirpbase does not know are stored as given
  end if;
  if v is null or jsonb_typeof(v) <> 'object' then
    raise exception 'configs.% must be a JSON object, got %', k, coalesce(jsonb_typeof(v), 'null')
      using errcode = '22023';
  end if;

  if k = 'persona' then
    perform public.config_check_type(k, v, 'name', 'string');
    perform public.config_check_type(k, v, 'description', 'string');
    perform public.config_check_type(k, v, 'tone', 'string');
    perform public.config_check_type(k, v, 'language', 'string');
    perform public.config_check_type(k, v, 'topics', 'array');
    perform public.config_check_type(k, v, 'examples', 'array');
  elsif k = 'schedule' then
    perform public.config_check_type(k, v, 'enabled', 'boolean');
    perform public.config_check_type(k, v, 'with_image', 'boolean');
    perform public.config_check_cron(k, v, 'generate_cron');
    perform public.config_check_cron(k, v, 'poll_mentions_cron');
    perform public.config_check_cron(k, v, 'collect_stats_cron');
    perform public.config_check_whole_number(k, v, 'job_retention_days', 1, 3650);
  elsif k = 'generation' then
    perform public.config_check_type(k, v, 'text_model', 'string');
    perform public.config_check_type(k, v, 'image_model', 'string');
    perform public.config_check_type(k, v, 'image', 'boolean');
    perform public.config_check_type(k, v, 'hashtags', 'array');
    perform public.config_check_type(k, v, 'banned_words', 'array');
    perform public.config_check_type(k, v, 'require_approval', 'boolean');
    perform public.config_check_whole_number(k, v, 'max_attempts', 1, 10);
    perform public.config_check_number(k, v, 'similarity_threshold', 0, 1);
    perform public.config_check_whole_number(k, v, 'recent_window', 0, 500);
    perform public.config_check_type(k, v, 'allow_urls', 'boolean');
    perform public.config_check_type(k, v, 'made_with_ai', 'boolean');
  elsif k = 'engagement' then
    perform public.config_check_type(k, v, 'auto_like', 'boolean');
    perform public.config_check_type(k, v, 'like_mentions', 'boolean');
    perform public.config_check_whole_number(k, v, 'daily_like_cap', 0, 100000);
    perform public.config_check_type(k, v, 'skip_authors', 'array');
    perform public.config_check_type(k, v, 'blocked_keywords', 'array');
  elsif k = 'quotas' then
    if v ? 'plan' and (v ->> 'plan') not in ('pay_per_use', 'basic', 'pro', 'enterprise', 'free') then
      raise exception 'configs.quotas.plan must be the X access tier: pay_per_use, basic, pro or enterprise, got "%"', v ->> 'plan'
        using errcode = '22023';
    end if;
    perform public.config_check_whole_number(k, v, 'monthly_post_cap', 0, 1e9, true);
    perform public.config_check_whole_number(k, v, 'monthly_read_cap', 0, 1e9, true);
    perform public.config_check_number(k, v, 'alert_threshold', 0.01, 1);
    perform public.config_check_number(k, v, 'cost_per_post_usd', 0, 100);
    perform public.config_check_number(k, v, 'cost_per_read_usd', 0, 100);
    perform public.config_check_number(k, v, 'openai_monthly_budget_usd', 0, 1e6, true);
    perform public.config_check_number(k, v, 'monthly_budget_usd', 0, 1e7, true);
  elsif k = 'alerts' then
    perform public.config_check_type(k, v, 'webhook_url', 'string', true);
    perform public.config_check_whole_number(k, v, 'min_interval_seconds', 0, 86400);
    if coalesce(v ->> 'webhook_url', '') <> '' and (v ->> 'webhook_url') !~ '^https?://' then
      raise exception 'configs.alerts.webhook_url must be an http(s) URL' using errcode = '22023';
    end if;
  elsif k = 'pricing' then
    perform public.validate_pricing_config(v);
  elsif k = 'conversation' then
    perform public.validate_conversation_config(v);
  end if;
end
$$;

-- Tables ----------------------------------------------------------------------------------------

-- reply_opt_outs: authors who asked the account to stop. Never answered again (no draft, ever).
create table if not exists public.reply_opt_outs (
  author_id text primary key,
  author_username text,
  reply_id text,
  phrase text not null,
  created_at timestamptz not null default now()
);
comment on table public.reply_opt_outs is
  'Authors who opted out of replies (a post of theirs to the account said "stop", "unsubscribe" or '
  'a configs.conversation.opt_out_phrases phrase). No reply draft is ever written for them.';

-- x_users: what X said about an author (GET /2/users, a User: Read), for the account-age and
-- follower filters; looked up again after a day.
create table if not exists public.x_users (
  user_id text primary key check (user_id ~ '^[0-9]{1,20}$'),
  username text,
  account_created_at timestamptz,
  followers_count bigint,
  looked_up_at timestamptz not null default now()
);

create table if not exists public.reply_drafts (
  id bigint generated always as identity primary key,
  -- One draft per interaction: the post it answers (the reply goes under it on X).
  reply_id text not null unique references public.replies (reply_id) on delete cascade,
  author_id text not null,
  author_username text,
  -- The conversation the post is in (its conversation_id, else the post it replies to, else
  -- itself): one open draft per conversation and author at a time (a conversation turn).
  conversation_id text not null,
  content text not null,
  status text not null default 'awaiting_approval' check (status in (
    'awaiting_approval', 'approved', 'posted', 'failed', 'rejected', 'expired', 'cancelled')),
  approval text not null default 'required' check (approval in ('required', 'auto')),
  -- The posts the model was shown: {"answering": {...}, "parent": {...}, "root": {...}}.
  context jsonb not null default '{}'::jsonb check (jsonb_typeof(context) = 'object'),
  drafts integer not null default 1 check (drafts >= 1),
  job_id bigint,
  scheduled_tweet_id bigint unique references public.scheduled_tweets (id),
  tweet_id text,
  error text,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  edited_at timestamptz,
  approved_at timestamptz,
  decided_at timestamptz,
  posted_at timestamptz
);
comment on table public.reply_drafts is
  'AI-written answers to posts that summoned the account, one per post. awaiting_approval -> '
  'approved (a scheduled_tweets reply posts it) -> posted | failed | cancelled; or rejected, or '
  'expired when not approved before expires_at; cancelled when the author opts out.';
create unique index if not exists reply_drafts_one_open_per_turn
  on public.reply_drafts (conversation_id, author_id)
  where status in ('awaiting_approval', 'approved');
create index if not exists reply_drafts_awaiting_idx on public.reply_drafts (expires_at)
  where status = 'awaiting_approval';
create index if not exists reply_drafts_created_idx on public.reply_drafts (created_at);
create index if not exists reply_drafts_author_idx on public.reply_drafts (author_id, created_at);

do $$
declare
  t text;
begin
  foreach t in array array['reply_opt_outs', 'x_users', 'reply_drafts']
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from anon, authenticated', t);
    execute format('grant all on table public.%I to service_role', t);
  end loop;
end
$$;
revoke all on sequence public.reply_drafts_id_seq from anon, authenticated;

insert into public.job_kinds (kind, default_max_attempts, description) values
  ('draft_reply', 4, 'Write a reply draft for a post that summoned the account')
on conflict (kind) do update set description = excluded.description,
  default_max_attempts = excluded.default_max_attempts;

-- scheduled_tweets: replies made from drafts ---------------------------------------------------
alter table public.scheduled_tweets add column if not exists reply_draft_id bigint;
do $$
begin
  if not exists (select 1 from pg_catalog.pg_constraint
                 where conname = 'scheduled_tweets_reply_draft_id_fkey') then
    alter table public.scheduled_tweets add constraint scheduled_tweets_reply_draft_id_fkey
      foreign key (reply_draft_id) references public.reply_drafts (id);
  end if;
end
$$;
comment on column public.scheduled_tweets.reply_draft_id is
  'The reply draft this post was approved from (source ''reply''); its outcome is mirrored onto the draft.';
alter table public.scheduled_tweets drop constraint if exists scheduled_tweets_source_check;
alter table public.scheduled_tweets add constraint scheduled_tweets_source_check
  check (source in ('operator', 'schedule', 'cli', 'reply'));

-- The guards -------------------------------------------------------------------------------------

-- reply_opt_out_phrase: the opt-out phrase `content` contains, or null. "stop" and "unsubscribe"
-- always, plus configs.conversation.opt_out_phrases; whole words, any case, handles ignored (a
-- user called @stopwatch is no opt-out). Erring towards an opt-out is deliberate: a false one
-- costs one conversation, a missed one breaks X's rule.
create or replace function public.reply_opt_out_phrase(content text)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  configured jsonb := public.config_value('conversation') -> 'opt_out_phrases';
  body text := pg_catalog.regexp_replace(coalesce(reply_opt_out_phrase.content, ''), '@[A-Za-z0-9_]{1,15}', ' ', 'g');
  phrase text;
  pattern text;
begin
  for phrase in
    select p from unnest(array['stop', 'unsubscribe']) as p
    union all
    select e from jsonb_array_elements_text(
      case when jsonb_typeof(configured) = 'array' then configured else '[]'::jsonb end) as e
  loop
    if btrim(phrase) = '' then
      continue;
    end if;
    -- words of the phrase, regex-escaped, joined by any whitespace
    select string_agg(pg_catalog.regexp_replace(w, '([][!$()*+.:<=>?\\^{|}-])', '\\\1', 'g'), '\s+')
      into pattern
    from regexp_split_to_table(btrim(phrase), '\s+') as w;
    if body ~* ('(^|[^[:alnum:]_])' || pattern || '($|[^[:alnum:]_])') then
      return btrim(phrase);
    end if;
  end loop;
  return null;
end
$$;

-- reply_author_skipped: the author is in configs.conversation.skip_authors (by id, or by
-- username with or without @, any case).
create or replace function public.reply_author_skipped(author_id text, author_username text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from jsonb_array_elements_text(
      case when jsonb_typeof(public.config_value('conversation') -> 'skip_authors') = 'array'
           then public.config_value('conversation') -> 'skip_authors' else '[]'::jsonb end) as s(entry)
    where btrim(s.entry) = reply_author_skipped.author_id
       or lower(ltrim(btrim(s.entry), '@')) = lower(reply_author_skipped.author_username));
$$;

-- reply_draft_refusal: why no draft may be written for this post (null: it may). The cheap guards
-- (what the replies trigger checks before enqueueing), and with `when_writing` the ones that depend on the
-- moment of writing too: the conversation turn, the daily caps, the reply window.
create or replace function public.reply_draft_refusal(reply_id text, when_writing boolean default true)
returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  r public.replies;
  conv jsonb := public.config_value('conversation');
  bot text := (select a.user_id from public.x_account a where a.id = 1);
  conversation text;
  found_id bigint;
  n integer;
  cap integer;
  langs jsonb := conv -> 'languages';
begin
  select * into r from public.replies p where p.reply_id = reply_draft_refusal.reply_id;
  if not found then
    return format('post %s is not in replies', reply_draft_refusal.reply_id);
  end if;
  if not coalesce((conv ->> 'enabled')::boolean, false) then
    return 'reply drafts are off (configs.conversation.enabled)';
  end if;
  if r.author_id = bot then
    return 'the account''s own post';
  end if;
  if exists (select 1 from public.reply_opt_outs o where o.author_id = r.author_id) then
    return 'the author opted out of replies';
  end if;
  if public.reply_author_skipped(r.author_id, r.author_username) then
    return 'the author is in configs.conversation.skip_authors';
  end if;
  if not public.x_summoned_reply(r.reply_id) then
    return 'the post did not summon the account (X allows a reply only to a post that mentions it or quotes one of its posts)';
  end if;
  if jsonb_typeof(langs) = 'array' and jsonb_array_length(langs) > 0
     and coalesce(r.lang, 'und') <> 'und' and not langs ? r.lang then
    return format('the post is in "%s", not in configs.conversation.languages', r.lang);
  end if;
  select d.id into found_id from public.reply_drafts d where d.reply_id = r.reply_id;
  if found then
    return format('draft %s answers this post already (one reply per interaction)', found_id);
  end if;
  if not when_writing then
    return null;
  end if;

  if r.created_at < now() - make_interval(hours => coalesce((conv ->> 'reply_window_hours')::numeric::integer, 24)) then
    return format('the post is older than configs.conversation.reply_window_hours (%s h): a late answer is worse than none',
                  coalesce((conv ->> 'reply_window_hours')::numeric::integer, 24));
  end if;
  conversation := coalesce(r.conversation_id, r.original_tweet_id, r.reply_id);
  select d.id into found_id from public.reply_drafts d
  where d.conversation_id = conversation and d.author_id = r.author_id
    and d.status in ('awaiting_approval', 'approved');
  if found then
    return format('draft %s is open for this conversation turn (one reply per turn)', found_id);
  end if;
  select d.id into found_id from public.reply_drafts d
  where d.conversation_id = conversation and d.author_id = r.author_id and d.status = 'posted'
    and coalesce(d.posted_at, d.approved_at) >= r.created_at
  order by d.id desc limit 1;
  if found then
    return format('draft %s already answered this conversation turn (one reply per turn)', found_id);
  end if;
  cap := coalesce((conv ->> 'daily_cap')::numeric::integer, 50);
  select count(*) into n from public.reply_drafts d
  where d.created_at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC';
  if n >= cap then
    return format('the daily cap of %s drafts is reached (configs.conversation.daily_cap)', cap);
  end if;
  cap := coalesce((conv ->> 'per_author_daily_cap')::numeric::integer, 3);
  select count(*) into n from public.reply_drafts d
  where d.author_id = r.author_id
    and d.created_at >= date_trunc('day', now() at time zone 'UTC') at time zone 'UTC';
  if n >= cap then
    return format('the author''s daily cap of %s drafts is reached (configs.conversation.per_author_daily_cap)', cap);
  end if;
  return null;
end
$$;

-- record_reply_opt_out: remember the author's opt-out and cancel every draft of theirs not yet
-- being posted (an approved reply whose post has not started is cancelled too).
create or replace function public.record_reply_opt_out(
  author_id text, author_username text, reply_id text, phrase text
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  added boolean;
begin
  insert into public.reply_opt_outs (author_id, author_username, reply_id, phrase)
  values (record_reply_opt_out.author_id, record_reply_opt_out.author_username,
          record_reply_opt_out.reply_id, record_reply_opt_out.phrase)
  on conflict on constraint reply_opt_outs_pkey do nothing;
  added := found;
  update public.scheduled_tweets s
  set status = 'cancelled', error = 'the author opted out of replies'
  from public.reply_drafts d
  where d.author_id = record_reply_opt_out.author_id and d.status = 'approved'
    and s.id = d.scheduled_tweet_id and s.status = 'pending';
  update public.reply_drafts d
  set status = 'cancelled', error = 'the author opted out of replies'
  where d.author_id = record_reply_opt_out.author_id and d.status = 'awaiting_approval';
  return added;
end
$$;

-- replies: an opt-out is recorded (whatever configs.conversation says: it outlives the setting);
-- otherwise a post the cheap guards let through gets one draft_reply job.
create or replace function public.replies_conversation()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  phrase text;
begin
  if new.author_id is distinct from (select a.user_id from public.x_account a where a.id = 1) then
    phrase := public.reply_opt_out_phrase(new.content);
    if phrase is not null then
      perform public.record_reply_opt_out(new.author_id, new.author_username, new.reply_id, phrase);
      return null;
    end if;
  end if;
  if public.reply_draft_refusal(new.reply_id, false) is null then
    perform public.enqueue_job('draft_reply', jsonb_build_object('reply_id', new.reply_id), now(), 5,
                               'draft_reply:' || new.reply_id, null);
  end if;
  return null;
end
$$;

drop trigger if exists replies_conversation on public.replies;
create trigger replies_conversation
  after insert on public.replies
  for each row execute function public.replies_conversation();

-- reply_text_checked: a reply's text as it will be stored: trimmed, not empty, no character X
-- refuses, not certainly over 280 weighted characters (the worker counts exactly before posting).
create or replace function public.reply_text_checked(draft_id bigint, content text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  label text := 'reply draft' || coalesce(' ' || reply_text_checked.draft_id::text, '');
  body text;
  len integer;
begin
  body := nullif(pg_catalog.regexp_replace(reply_text_checked.content,
    '^[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+|[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+$', '', 'g'), '');
  if body is null then
    raise exception '%: the text is empty', label using errcode = '23514';
  end if;
  if body operator(pg_catalog.~) '[\ufeff\ufffe\uffff]' then
    raise exception '%: the text contains a character X refuses (U+FEFF, U+FFFE or U+FFFF)',
      label using errcode = '23514';
  end if;
  len := public.tweet_length_at_least(body);
  if len > 280 then
    raise exception '%: the text is at least % weighted characters; X allows 280', label, len
      using errcode = '23514', hint = 'URLs count 23 and CJK characters and emoji count 2.';
  end if;
  return body;
end
$$;

-- reply_drafts: the state machine, whoever updates the row (the functions below, the console, an
-- operator's UPDATE). Approval creates the post; an expired draft cannot be approved.
create or replace function public.reply_drafts_before_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.updated_at := now();
  if new.content is distinct from old.content then
    if old.status <> 'awaiting_approval' then
      raise exception 'reply draft %: only a draft awaiting approval can be edited (it is %)', old.id, old.status
        using errcode = '23514';
    end if;
    new.content := public.reply_text_checked(old.id, new.content);
    if new.content is distinct from old.content then
      new.edited_at := now();
    end if;
  end if;
  if new.status is not distinct from old.status then
    return new;
  end if;
  if old.status in ('posted', 'failed', 'rejected', 'expired', 'cancelled') then
    raise exception 'reply draft %: % is final', old.id, old.status using errcode = '23514';
  end if;

  if new.status = 'approved' then
    if old.status <> 'awaiting_approval' then
      raise exception 'reply draft %: only a draft awaiting approval can be approved (it is %)', old.id, old.status
        using errcode = '23514';
    end if;
    if old.expires_at <= now() then
      -- Too late: the draft expires instead (the caller reads status 'expired').
      new.status := 'expired';
      new.content := old.content;
      new.edited_at := old.edited_at;
      new.decided_at := now();
      return new;
    end if;
    if exists (select 1 from public.reply_opt_outs o where o.author_id = old.author_id) then
      raise exception 'reply draft %: the author opted out of replies; it will not be posted', old.id
        using errcode = '23514';
    end if;
    if public.reply_author_skipped(old.author_id, old.author_username) then
      raise exception 'reply draft %: the author is in configs.conversation.skip_authors', old.id
        using errcode = '23514';
    end if;
    -- The post: checked and queued like any other (post_tweet, exactly once); the scheduled_tweets
    -- door refuses it too when the post did not summon the account.
    insert into public.scheduled_tweets (content, in_reply_to_tweet_id, source, reply_draft_id)
    values (new.content, old.reply_id, 'reply', old.id)
    returning id into new.scheduled_tweet_id;
    new.approved_at := now();
    new.decided_at := now();
  elsif new.status in ('rejected', 'expired') then
    if new.status = 'rejected' and old.status <> 'awaiting_approval' then
      raise exception 'reply draft %: only a draft awaiting approval can be rejected (it is %)', old.id, old.status
        using errcode = '23514';
    end if;
    new.decided_at := now();
  elsif new.status in ('posted', 'failed', 'cancelled') then
    if new.status in ('posted', 'failed') and old.status <> 'approved' then
      raise exception 'reply draft %: only an approved draft is posted or fails (it is %)', old.id, old.status
        using errcode = '23514';
    end if;
    new.decided_at := coalesce(new.decided_at, now());
  elsif new.status = 'awaiting_approval' then
    raise exception 'reply draft %: a % draft does not go back to awaiting approval', old.id, old.status
      using errcode = '23514';
  end if;
  return new;
end
$$;

drop trigger if exists reply_drafts_before_update on public.reply_drafts;
create trigger reply_drafts_before_update
  before update on public.reply_drafts
  for each row execute function public.reply_drafts_before_update();

-- scheduled_tweets -> reply_drafts: the post's outcome is the draft's.
create or replace function public.scheduled_tweets_reply_outcome()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.reply_drafts d
  set status = case new.status when 'posted' then 'posted' when 'failed' then 'failed' else 'cancelled' end,
      tweet_id = new.tweet_id,
      posted_at = new.posted_at,
      error = new.error
  where d.id = new.reply_draft_id and d.status = 'approved';
  return null;
end
$$;

drop trigger if exists scheduled_tweets_reply_outcome on public.scheduled_tweets;
create trigger scheduled_tweets_reply_outcome
  after update of status on public.scheduled_tweets
  for each row
  when (new.reply_draft_id is not null and new.status is distinct from old.status
        and new.status in ('posted', 'failed', 'cancelled'))
  execute function public.scheduled_tweets_reply_outcome();

-- record_reply_draft: store the worker's draft, the guards checked again under a lock (two
-- drafts racing for one conversation turn or the last of a daily cap: one wins). Returns the
-- draft, or the refusal. With configs.conversation.approval "auto" (and X's approval recorded)
-- the draft is approved at once.
create or replace function public.record_reply_draft(
  reply_id text,
  content text,
  context jsonb default '{}'::jsonb,
  drafts integer default 1,
  job_id bigint default null
) returns table (draft_id bigint, status text, expires_at timestamptz, refusal text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  conv jsonb := public.config_value('conversation');
  r public.replies;
  why text;
  new_id bigint;
  auto boolean;
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('chirpbase-reply-drafts'));
  why := public.reply_draft_refusal(record_reply_draft.reply_id, true);
  if why is not null then
    return query select null::bigint, null::text, null::timestamptz, why;
    return;
  end if;
  select * into r from public.replies p where p.reply_id = record_reply_draft.reply_id;
  auto := conv ->> 'approval' = 'auto' and (conv -> 'x_ai_reply_approval_granted') = 'true'::jsonb;
  insert into public.reply_drafts (reply_id, author_id, author_username, conversation_id, content,
                                   approval, context, drafts, job_id, expires_at)
  values (r.reply_id, r.author_id, r.author_username,
          coalesce(r.conversation_id, r.original_tweet_id, r.reply_id),
          public.reply_text_checked(null, record_reply_draft.content),
          case when auto then 'auto' else 'required' end,
          coalesce(record_reply_draft.context, '{}'::jsonb), greatest(coalesce(record_reply_draft.drafts, 1), 1),
          record_reply_draft.job_id,
          now() + make_interval(mins => coalesce((conv ->> 'expire_after_minutes')::numeric::integer, 240)))
  returning id into new_id;
  if auto then
    update public.reply_drafts d set status = 'approved' where d.id = new_id;
  end if;
  return query select d.id, d.status, d.expires_at, null::text from public.reply_drafts d where d.id = new_id;
end
$$;

-- The operator's doors (the CLI and the console call them; an UPDATE of status does the same). --

-- approve_reply_draft: approve, with new text when given. Returns the draft (status 'expired'
-- when it was too late), none when there is no such draft.
create or replace function public.approve_reply_draft(id bigint, content text default null)
returns setof public.reply_drafts
language sql
security definer
set search_path = ''
as $$
  update public.reply_drafts d
  set content = coalesce(approve_reply_draft.content, d.content), status = 'approved'
  where d.id = approve_reply_draft.id
  returning d.*;
$$;

create or replace function public.edit_reply_draft(id bigint, content text)
returns setof public.reply_drafts
language sql
security definer
set search_path = ''
as $$
  update public.reply_drafts d set content = edit_reply_draft.content
  where d.id = edit_reply_draft.id
  returning d.*;
$$;

create or replace function public.reject_reply_draft(id bigint)
returns setof public.reply_drafts
language sql
security definer
set search_path = ''
as $$
  update public.reply_drafts d set status = 'rejected'
  where d.id = reject_reply_draft.id
  returning d.*;
$$;

-- expire_reply_drafts: drafts not approved in time expire; an approved reply whose post has not
-- started within the same time after approval is cancelled (a rate limit, a budget wait: a late
-- answer is worse than none). Returns how many drafts expired. pg_cron runs it every minute.
create or replace function public.expire_reply_drafts()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  ttl interval := make_interval(mins => coalesce(
    (public.config_value('conversation') ->> 'expire_after_minutes')::numeric::integer, 240));
  n integer;
  late integer;
begin
  update public.reply_drafts d set status = 'expired'
  where d.status = 'awaiting_approval' and d.expires_at <= now();
  get diagnostics n = row_count;
  with stale as (
    update public.reply_drafts d
    set status = 'expired', error = 'approved but not posted in time'
    from public.scheduled_tweets s
    where d.status = 'approved' and d.approved_at <= now() - ttl
      and s.id = d.scheduled_tweet_id and s.status = 'pending'
    returning d.scheduled_tweet_id
  )
  update public.scheduled_tweets s
  set status = 'cancelled', error = 'reply approved but not posted in time (configs.conversation.expire_after_minutes)'
  from stale where s.id = stale.scheduled_tweet_id and s.status = 'pending';
  get diagnostics late = row_count;
  return n + late;
end
$$;

-- pg_cron: the expiry sweep, beside the other chirpbase-* schedules -----------------------------
create or replace function public.sync_schedules()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  sched jsonb := public.config_value('schedule');
  retention integer := coalesce((sched ->> 'job_retention_days')::numeric::integer, 7);
  n integer := 0;
  field text;
begin
  if to_regnamespace('cron') is null then
    raise notice 'pg_cron is not installed in database %; chirpbase schedules were not created',
      current_database();
    return 0;
  end if;

  -- pg_cron parses the expressions; its refusal names the config field (the change is refused).
  field := 'generate_cron';
  begin
    if coalesce((sched ->> 'enabled')::boolean, true) then
      perform cron.schedule('chirpbase-generate', coalesce(sched ->> 'generate_cron', '0 9,13,18 * * *'),
        'select public.schedule_generated_tweet()');
      n := n + 1;
    elsif exists (select 1 from cron.job where jobname = 'chirpbase-generate') then
      perform cron.unschedule('chirpbase-generate');
    end if;

    field := 'poll_mentions_cron';
    perform cron.schedule('chirpbase-poll-mentions', coalesce(sched ->> 'poll_mentions_cron', '* * * * *'),
      $cmd$select public.enqueue_periodic_job('poll_mentions',
        to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), 5, 3)$cmd$);
    field := 'collect_stats_cron';
    perform cron.schedule('chirpbase-collect-stats', coalesce(sched ->> 'collect_stats_cron', '0 * * * *'),
      $cmd$select public.enqueue_periodic_job('collect_stats',
        to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI'), 1, 3)$cmd$);
  exception when invalid_parameter_value then
    raise exception 'configs.schedule.% is not a schedule pg_cron accepts, got "%"', field, sched ->> field
      using errcode = '22023', detail = sqlerrm,
            hint = 'Five cron fields in UTC like "0 9 * * *"; "N seconds" needs pg_cron 1.5 or later.';
  end;
  perform cron.schedule('chirpbase-reap-leases', '* * * * *', 'select public.reap_expired_leases()');
  -- Reply drafts not approved in time expire (a late answer is worse than none).
  perform cron.schedule('chirpbase-expire-reply-drafts', '* * * * *', 'select public.expire_reply_drafts()');
  -- X's own usage count (what it bills) is checked hourly against chirpbase's.
  perform cron.schedule('chirpbase-reconcile-usage', '30 * * * *',
    $cmd$select public.enqueue_periodic_job('reconcile_usage',
      to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24'), 0, 3)$cmd$);
  perform cron.schedule('chirpbase-prune', '17 3 * * *',
    format($cmd$select public.prune_finished_jobs(interval '%s days');
      delete from cron.job_run_details where end_time < now() - interval '%s days';
      delete from public.x_billed_resources where day < (now() at time zone 'UTC')::date - 1$cmd$,
      retention, retention));
  return n + 6;
end
$$;

select public.sync_schedules();

-- Realtime: reply drafts ring the console's doorbell too (a draft is ready, decided elsewhere).
do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication_tables
                 where pubname = 'supabase_realtime' and schemaname = 'public'
                   and tablename = 'reply_drafts') then
    alter publication supabase_realtime add table public.reply_drafts;
  end if;
end
$$;

-- Function privileges: only the owner and the service role. -----------------------------------
do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('x_summoned_reply', 'x_summoned_by', 'validate_conversation_config',
                        'validate_config', 'reply_opt_out_phrase', 'reply_author_skipped',
                        'reply_draft_refusal', 'record_reply_opt_out', 'replies_conversation',
                        'reply_text_checked', 'reply_drafts_before_update',
                        'scheduled_tweets_reply_outcome', 'record_reply_draft',
                        'approve_reply_draft', 'edit_reply_draft', 'reject_reply_draft',
                        'expire_reply_drafts', 'sync_schedules')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
