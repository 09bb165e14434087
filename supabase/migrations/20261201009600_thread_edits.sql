-- Threads for the operator (the CLI and the console call these): change one part of a generated
-- thread awaiting approval, and move an approved thread to another time with all its parts.
--
-- A generated thread waits for approval as one row whose `thread` holds its parts (migration
-- threads): the part rows are made on approval. So a part is edited in `thread`, while no job
-- and no worker can hold it, and it is checked as the door checks a written thread
-- (thread_refusal: each part a post of at most 280 weighted characters, none empty, none a
-- character X refuses, no two alike, since X refuses a duplicate post). Once any part is posting
-- or posted nothing of the thread changes: X has its text, and reconciliation compares with it.

-- edit_thread_part: new text for part `part` (1..N) of a thread awaiting approval. Returns the
-- thread's row (none when there is no row with that id).
create or replace function public.edit_thread_part(id bigint, part integer, content text)
returns setof public.scheduled_tweets
language plpgsql
security definer
set search_path = ''
as $$
declare
  t public.scheduled_tweets;
  started record;
  body text;
  parts text[];
  refusal text;
begin
  select * into t from public.scheduled_tweets s where s.id = edit_thread_part.id for update;
  if not found then
    return;
  end if;
  if t.thread_of is not null then
    raise exception 'scheduled_tweets %: this is part % of thread %; edit the thread''s part instead',
      t.id, t.thread_position, t.thread_of
      using errcode = '23514',
            hint = pg_catalog.format('edit_thread_part(%s, %s, ...)', t.thread_of, t.thread_position);
  end if;
  if t.thread is null and t.thread_parts is null then
    raise exception 'scheduled_tweets %: not a thread (edit its text with edit_scheduled_tweet)', t.id
      using errcode = '23514';
  end if;
  select p.thread_position, p.status into started
  from public.scheduled_tweets p
  where p.thread_of = t.id and p.status in ('posting', 'posted')
  order by p.thread_position
  limit 1;
  if found then
    raise exception 'scheduled_tweets %: part % of the thread is %; nothing of a thread changes once a part is posting or posted',
      t.id, started.thread_position, started.status using errcode = '23514';
  end if;
  if t.status <> 'awaiting_approval' then
    raise exception 'scheduled_tweets %: only a thread awaiting approval can be edited (it is %)',
      t.id, t.status
      using errcode = '23514',
            hint = 'Cancel it and schedule the new parts instead.';
  end if;
  if edit_thread_part.part is null or edit_thread_part.part < 1
     or edit_thread_part.part > pg_catalog.cardinality(t.thread) then
    raise exception 'scheduled_tweets %: the thread has parts 1 to %; there is no part %',
      t.id, pg_catalog.cardinality(t.thread), coalesce(edit_thread_part.part::text, 'null')
      using errcode = '23514';
  end if;
  body := public.x_trim(edit_thread_part.content);
  if body is null then
    raise exception 'scheduled_tweets %: thread part % is empty or whitespace only, which X refuses',
      t.id, edit_thread_part.part using errcode = '23514';
  end if;
  parts := t.thread;
  parts[edit_thread_part.part] := body;
  refusal := public.thread_refusal(parts);
  if refusal is not null then
    raise exception 'scheduled_tweets %: %', t.id, refusal
      using errcode = '23514',
            hint = 'Each part is a post: at most 280 weighted characters, none empty, no two alike.';
  end if;
  return query
    update public.scheduled_tweets s
    set thread = parts,
        edited_at = case when s.thread is distinct from parts then pg_catalog.now() else s.edited_at end
    where s.id = t.id
    returning s.*;
end
$$;

-- reschedule_scheduled_tweet: as before (refused once posting started or the row is final; an
-- approved row's queued post job moves with it), plus threads: the parts not started move with
-- the thread's row, and the first part's queued job with them (the parts' own trigger moves
-- it). A pending thread's parts were already moved by the thread's trigger; an approved one's
-- were not, so part 1 posted at the old time.
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
  update public.scheduled_tweets s
  set scheduled_for = reschedule_scheduled_tweet.scheduled_for
  where s.id = reschedule_scheduled_tweet.id;
  -- A thread's parts not started (pending: the first may have its queued job) follow it.
  update public.scheduled_tweets p
  set scheduled_for = reschedule_scheduled_tweet.scheduled_for
  where p.thread_of = reschedule_scheduled_tweet.id and p.status = 'pending'
    and p.scheduled_for is distinct from reschedule_scheduled_tweet.scheduled_for;
  return query
    select s.* from public.scheduled_tweets s where s.id = reschedule_scheduled_tweet.id;
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
      and p.proname in ('edit_thread_part', 'reschedule_scheduled_tweet')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
