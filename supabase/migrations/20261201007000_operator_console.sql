-- Doors for the operator's edits (the CLI and the console call them): change the text of a
-- generated tweet awaiting approval, and move a post to another time. Plus the Realtime events
-- that keep the console's inbox live (a draft is ready when its row changes, not when a job
-- row is inserted).

alter table public.scheduled_tweets add column if not exists edited_at timestamptz;
comment on column public.scheduled_tweets.edited_at is
  'When an operator last changed the generated text (edit_scheduled_tweet), before approving it.';

-- edit_scheduled_tweet: new text for a draft awaiting approval. Only then: no job exists for the
-- row at that moment (generation finished, the post job is created on approval), so no worker
-- can be holding the old text. The text is checked as an insert is (trimmed, not empty, no
-- character X refuses, at most 280 weighted characters). Returns the row, none if it is gone.
create or replace function public.edit_scheduled_tweet(id bigint, content text)
returns setof public.scheduled_tweets
language plpgsql
security definer
set search_path = ''
as $$
declare
  current_status text;
  body text;
  len integer;
begin
  select s.status into current_status
  from public.scheduled_tweets s where s.id = edit_scheduled_tweet.id for update;
  if not found then
    return;
  end if;
  if current_status <> 'awaiting_approval' then
    raise exception 'scheduled_tweets %: only a tweet awaiting approval can be edited (it is %)',
      edit_scheduled_tweet.id, current_status
      using errcode = '23514',
            hint = 'Cancel it and schedule the new text instead.';
  end if;
  body := nullif(pg_catalog.regexp_replace(edit_scheduled_tweet.content,
    '^[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+|[\s\u0085\u00a0\u2007\u202f\u001c-\u001f]+$', '', 'g'), '');
  if body is null then
    raise exception 'scheduled_tweets %: the text is empty', edit_scheduled_tweet.id
      using errcode = '23514';
  end if;
  if body operator(pg_catalog.~) '[\ufeff\ufffe\uffff]' then
    raise exception 'scheduled_tweets %: the text contains a character X refuses (U+FEFF, U+FFFE or U+FFFF)',
      edit_scheduled_tweet.id using errcode = '23514';
  end if;
  -- A lower bound of X's count (as at the insert door): only text certainly too long is
  -- refused here; the worker checks the exact count before any call to X.
  len := public.tweet_length_at_least(body);
  if len > 280 then
    raise exception 'scheduled_tweets %: the text is at least % weighted characters; X allows 280',
      edit_scheduled_tweet.id, len
      using errcode = '23514',
            hint = 'URLs count 23 and CJK characters and emoji count 2.';
  end if;
  return query
    update public.scheduled_tweets s
    set content = body,
        edited_at = case when s.content is distinct from body then pg_catalog.now() else s.edited_at end
    where s.id = edit_scheduled_tweet.id
    returning s.*;
end
$$;

-- reschedule_scheduled_tweet: post at another time. Refused once posting started or the row is
-- final. The before-update trigger checks the window (a day ago to a year ahead) and moves the
-- queued job of a pending row; an approved row's queued post job is moved here, so it posts at
-- the new time too (never before now).
create or replace function public.reschedule_scheduled_tweet(id bigint, scheduled_for timestamptz)
returns setof public.scheduled_tweets
language plpgsql
security definer
set search_path = ''
as $$
declare
  current_status text;
begin
  if reschedule_scheduled_tweet.scheduled_for is null then
    raise exception 'scheduled_tweets %: give a time to post at', reschedule_scheduled_tweet.id
      using errcode = '23514';
  end if;
  select s.status into current_status
  from public.scheduled_tweets s where s.id = reschedule_scheduled_tweet.id for update;
  if not found then
    return;
  end if;
  if current_status in ('posting', 'posted', 'failed', 'cancelled', 'rejected') then
    raise exception 'scheduled_tweets %: cannot reschedule a tweet that is %',
      reschedule_scheduled_tweet.id, current_status using errcode = '23514';
  end if;
  if current_status = 'approved' then
    update public.jobs j
    set run_at = greatest(reschedule_scheduled_tweet.scheduled_for, pg_catalog.now()),
        updated_at = pg_catalog.now()
    where (j.payload ->> 'scheduled_tweet_id')::bigint = reschedule_scheduled_tweet.id
      and j.payload ? 'scheduled_tweet_id'
      and j.kind = 'post_tweet'
      and j.status = 'queued';
  end if;
  return query
    update public.scheduled_tweets s
    set scheduled_for = reschedule_scheduled_tweet.scheduled_for
    where s.id = reschedule_scheduled_tweet.id
    returning s.*;
end
$$;

do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('edit_scheduled_tweet', 'reschedule_scheduled_tweet')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;

-- Realtime: scheduled_tweets changes ring the console's doorbell (a worker subscribes to them
-- only when it serves the console).
do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication_tables
                 where pubname = 'supabase_realtime' and schemaname = 'public'
                   and tablename = 'scheduled_tweets') then
    alter publication supabase_realtime add table public.scheduled_tweets;
  end if;
end
$$;
