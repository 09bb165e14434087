-- Threads: a scheduled post can be an ordered list of parts, each posted as a reply to the one
-- before, exactly once per part across crashes.
--
-- The shape. The operator inserts one row with `thread text[]` (or, to generate one, a `topic`
-- with `thread_parts`). That row is the thread: it carries the status and, as parts post,
-- `thread_tweet_ids` (by position) and `tweet_id` (the first part's, the thread's root). Each part
-- is its own scheduled_tweets row (`thread_of` = the thread, `thread_position` 1..N), created by
-- the database, and posted by post_tweet like any post, with the same guarantees: intent recorded
-- before the call, an unknown outcome reconciled against the timeline before any retry, the
-- quota held under the row. Only the first part has a job at first. When part k is recorded
-- posted, the same transaction points part k+1 at its tweet (`in_reply_to_tweet_id`) and queues
-- its job, so a crash after part 2 of 5 leaves part 3's job waiting and parts 1-2 posted: they are
-- never posted again, and the chain resumes at part 3.
--
-- X's rules that apply (xdevplatform/docs): each part is a post, 280 weighted characters
-- (checked here as a lower bound, exactly by the worker); a reply to the account's own post is
-- allowed on every tier (the summoned rule, x-api/posts/manage-tweets/integrate.mdx "Reply
-- restrictions", is about replying to someone else's post; x_summoned_by counts the account's own
-- posts) and is billed as a plain "Post: Create", not "Post: Create (summoned)"
-- (x-api/getting-started/pricing.mdx): x_reply_target tells the two apart.

alter table public.scheduled_tweets add column if not exists thread text[];
alter table public.scheduled_tweets add column if not exists thread_parts integer;
alter table public.scheduled_tweets add column if not exists thread_of bigint
  references public.scheduled_tweets (id) on delete cascade;
alter table public.scheduled_tweets add column if not exists thread_position integer;
alter table public.scheduled_tweets add column if not exists thread_tweet_ids text[];
comment on column public.scheduled_tweets.thread is
  'A thread: 2 to 25 parts posted in order, each a reply to the one before (instead of content or topic).';
comment on column public.scheduled_tweets.thread_parts is
  'With a topic: generate a thread of this many parts (2 to 25) instead of one post.';
comment on column public.scheduled_tweets.thread_of is
  'Set on the rows chirpbase creates for a thread''s parts: the thread''s row.';
comment on column public.scheduled_tweets.thread_position is 'A part''s place in its thread, from 1.';
comment on column public.scheduled_tweets.thread_tweet_ids is
  'On a thread''s row: the tweet id of each part posted so far, in order.';
create unique index if not exists scheduled_tweets_thread_part_idx
  on public.scheduled_tweets (thread_of, thread_position) where thread_of is not null;

-- thread_refusal: why X would refuse one of these parts (or chirpbase would not post them as a
-- thread), or null. Parts are already trimmed.
create or replace function public.thread_refusal(parts text[])
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  n integer := coalesce(pg_catalog.cardinality(parts), 0);
  len integer;
begin
  if pg_catalog.array_ndims(parts) > 1 then
    return 'thread must be a flat list of texts, one per part';
  end if;
  if n < 2 or n > 25 then
    return pg_catalog.format('a thread has 2 to 25 parts; got %s', n);
  end if;
  for i in 1 .. n loop
    if parts[i] is null then
      return pg_catalog.format('thread part %s is empty or whitespace only, which X refuses', i);
    end if;
    if parts[i] operator(pg_catalog.~) '[\ufeff\ufffe\uffff]' then
      return pg_catalog.format(
        'thread part %s contains a character X refuses (U+FEFF, U+FFFE or U+FFFF)', i);
    end if;
    len := public.tweet_length_at_least(parts[i]);
    if len > 280 then
      return pg_catalog.format('thread part %s is at least %s weighted characters; X allows 280', i, len);
    end if;
    for j in 1 .. i - 1 loop
      if parts[j] = parts[i] then
        return pg_catalog.format(
          'thread parts %s and %s are the same text; X refuses a duplicate post', j, i);
      end if;
    end loop;
  end loop;
  return null;
end
$$;

-- scheduled_tweets: validate at the door and create the job ------------------------------------
-- As before, plus threads: exactly one of content, topic or thread; a thread's parts checked as
-- content is; the thread row gets no job (its parts do: the first now, each next one when the
-- part before it is posted).
create or replace function public.scheduled_tweets_before_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  len integer;
  blank_content boolean := new.content is not null;
  refusal text;
  is_part boolean := new.thread_of is not null;
begin
  if (is_part or new.thread_position is not null or new.thread_tweet_ids is not null)
     and coalesce(pg_catalog.current_setting('chirpbase.creating_thread_parts', true), '') <> 'on' then
    raise exception 'scheduled_tweets: thread_of, thread_position and thread_tweet_ids are set by chirpbase'
      using errcode = '23514',
            hint = 'Insert a thread as one row: insert into scheduled_tweets (thread) values (array[''first'', ''second'']).';
  end if;
  -- Trim every kind of surrounding whitespace (newlines, tabs, no-break spaces ...): the set
  -- Python's str.strip() removes, so the worker never finds an accepted row empty.
  new.content := public.x_trim(new.content);
  new.topic := public.x_trim(new.topic);
  if new.thread is not null and pg_catalog.array_ndims(new.thread) = 1 then
    new.thread := array(select public.x_trim(p) from pg_catalog.unnest(new.thread) p);
  end if;
  blank_content := blank_content and new.content is null;
  if blank_content and new.topic is null and new.thread is null then
    -- X refuses a post of whitespace alone (twitter-text calls it valid; X's API does not).
    raise exception 'scheduled_tweets: content is empty or whitespace only, which X refuses'
      using errcode = '23514',
            hint = 'Give the exact text to post, or a topic to generate one.';
  end if;
  if new.content is null and new.topic is null and new.thread is null then
    raise exception 'scheduled_tweets: give either content (exact text to post) or topic (to generate), not neither'
      using errcode = '23514',
            hint = 'Or a thread: thread text[] with its parts, posted in order.';
  end if;
  if new.content is not null and new.topic is not null then
    raise exception 'scheduled_tweets: give either content or topic, not both'
      using errcode = '23514';
  end if;
  if new.thread is not null and (new.content is not null or new.topic is not null) then
    raise exception 'scheduled_tweets: give one of content, topic or thread, not two (a thread''s parts are its text)'
      using errcode = '23514';
  end if;
  if new.content ~ '[\ufeff\ufffe\uffff]' then
    raise exception 'scheduled_tweets: content contains a character X refuses (U+FEFF, U+FFFE or U+FFFF)'
      using errcode = '23514';
  end if;
  if new.content is not null then
    len := public.tweet_length_at_least(new.content);
    if len > 280 then
      raise exception 'scheduled_tweets: content is at least % weighted characters; X allows 280', len
        using errcode = '23514',
              hint = 'URLs count 23, CJK characters and emoji 2; `chirpbase count TEXT` gives the exact count.';
    end if;
  end if;
  if new.thread is not null then
    refusal := public.thread_refusal(new.thread);
    if refusal is not null then
      raise exception 'scheduled_tweets: %', refusal
        using errcode = '23514',
              hint = 'Each part is a post: at most 280 weighted characters, none empty, no two alike.';
    end if;
    if new.with_image then
      raise exception 'scheduled_tweets: with_image asks for a generated image; to put an image on a part of a written thread, set that part''s image_path'
        using errcode = '23514';
    end if;
  end if;
  if new.thread_parts is not null then
    if new.topic is null then
      raise exception 'scheduled_tweets: thread_parts goes with a topic (a generated thread of that many parts); a written thread is given in thread'
        using errcode = '23514';
    end if;
    if new.thread_parts < 2 or new.thread_parts > 25 then
      raise exception 'scheduled_tweets: thread_parts is %; a thread has 2 to 25 parts', new.thread_parts
        using errcode = '23514';
    end if;
  end if;
  if new.topic is not null and length(new.topic) > 500 then
    raise exception 'scheduled_tweets: topic is % characters; keep it under 500', length(new.topic)
      using errcode = '23514';
  end if;
  new.scheduled_for := coalesce(new.scheduled_for, now());
  if new.scheduled_for < now() - interval '1 day' then
    raise exception 'scheduled_tweets: scheduled_for % is more than a day in the past', new.scheduled_for
      using errcode = '23514',
            hint = 'Omit scheduled_for to post now.';
  end if;
  -- Also keeps the job's run_at a time every client can read (not infinity, not year 10000+).
  if new.scheduled_for > now() + interval '1 year' then
    raise exception 'scheduled_tweets: scheduled_for % is more than a year ahead', new.scheduled_for
      using errcode = '23514',
            hint = 'Schedule at most a year ahead.';
  end if;
  if new.status is distinct from 'pending' then
    raise exception 'scheduled_tweets: new rows start as pending, not %', new.status
      using errcode = '23514';
  end if;

  if new.thread is not null or (is_part and new.thread_position > 1) then
    new.job_id := null;  -- a thread's parts carry its jobs; a later part's job waits for the one before
  else
    new.job_id := public.enqueue_job(
      case when new.content is not null then 'post_tweet' else 'generate_tweet' end,
      jsonb_build_object('scheduled_tweet_id', new.id),
      new.scheduled_for,
      0,
      case when new.content is not null then 'post_tweet:' else 'generate_tweet:' end || new.id,
      null);
  end if;
  return new;
end
$$;

-- thread_create_parts: one row per part, for a thread row with its parts (written, or
-- generated: then when the text arrives). Part 1 answers what the thread answers and carries its
-- poll and quote; it is queued by its own insert.
create or replace function public.thread_create_parts(thread_id bigint)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  t public.scheduled_tweets;
  made integer;
begin
  select * into t from public.scheduled_tweets s where s.id = thread_create_parts.thread_id;
  if t.thread is null or exists (select 1 from public.scheduled_tweets s where s.thread_of = t.id) then
    return 0;
  end if;
  perform pg_catalog.set_config('chirpbase.creating_thread_parts', 'on', true);
  insert into public.scheduled_tweets (content, scheduled_for, source, thread_of, thread_position,
                                       in_reply_to_tweet_id, quote_tweet_id, poll_options,
                                       poll_duration_minutes, image_path, image_url, alt_text)
  select p.part, greatest(t.scheduled_for, now() - interval '1 hour'), t.source, t.id, p.position,
         case when p.position = 1 then t.in_reply_to_tweet_id end,
         case when p.position = 1 then t.quote_tweet_id end,
         case when p.position = 1 then t.poll_options end,
         case when p.position = 1 then t.poll_duration_minutes end,
         case when p.position = 1 then t.image_path end,
         case when p.position = 1 then t.image_url end,
         case when p.position = 1 then t.alt_text end
  from pg_catalog.unnest(t.thread) with ordinality as p(part, position)
  order by p.position;
  get diagnostics made = row_count;
  perform pg_catalog.set_config('chirpbase.creating_thread_parts', 'off', true);
  return made;
end
$$;

create or replace function public.scheduled_tweets_after_insert_thread()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.thread_create_parts(new.id);
  return null;
end
$$;

drop trigger if exists scheduled_tweets_after_insert_thread on public.scheduled_tweets;
create trigger scheduled_tweets_after_insert_thread
  after insert on public.scheduled_tweets
  for each row when (new.thread is not null and new.thread_of is null)
  execute function public.scheduled_tweets_after_insert_thread();

-- A part posts only after the part before it: its parent tweet is known then. Enforced here, so
-- no worker (stale, retried by hand) can post part k+1 before part k.
create or replace function public.scheduled_tweets_thread_order()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'posting' and old.status is distinct from 'posting'
     and new.thread_position > 1 and new.in_reply_to_tweet_id is null then
    raise exception 'scheduled_tweets %: part % of its thread cannot be posted before part %',
      old.id, new.thread_position, new.thread_position - 1
      using errcode = '23514';
  end if;
  if (old.thread is not null or old.thread_parts is not null) and new.content is not null
     and new.content is distinct from old.content then
    raise exception 'scheduled_tweets %: a thread has no text of its own; its parts are rows (thread_of = %): change those',
      old.id, old.id using errcode = '23514';
  end if;
  if new.thread_of is distinct from old.thread_of or new.thread_position is distinct from old.thread_position then
    raise exception 'scheduled_tweets %: a part''s thread and position do not change', old.id
      using errcode = '23514';
  end if;
  -- Approving a generated thread (or finishing one without approval) queues a post job for the
  -- row, as for a single post; a thread's row is never posted itself: its parts are.
  if new.thread_parts is not null and new.job_id is distinct from old.job_id
     and new.job_id is not null and old.thread_of is null then
    update public.jobs j set status = 'cancelled', finished_at = now(), updated_at = now(),
                             last_error = 'a thread is posted by its parts'
    where j.id = new.job_id and j.kind = 'post_tweet' and j.status = 'queued';
    new.job_id := old.job_id;
  end if;
  if old.thread_of is null and new.thread is distinct from old.thread
     and exists (select 1 from public.scheduled_tweets s where s.thread_of = old.id) then
    raise exception 'scheduled_tweets %: the parts of a thread are rows of their own now; change a part (thread_of = %) instead',
      old.id, old.id using errcode = '23514';
  end if;
  return new;
end
$$;

drop trigger if exists scheduled_tweets_thread_order on public.scheduled_tweets;
create trigger scheduled_tweets_thread_order
  before update on public.scheduled_tweets
  for each row execute function public.scheduled_tweets_thread_order();

-- Progress: what a part's new status means for the thread, in the same transaction.
create or replace function public.scheduled_tweets_thread_progress()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  parts integer;
  posted integer;
begin
  if new.thread_of is null then
    -- The thread row itself: cancelling it cancels its parts not started; moving it moves them.
    if new.status = 'cancelled' and old.status is distinct from 'cancelled' then
      update public.scheduled_tweets s set status = 'cancelled'
      where s.thread_of = new.id and s.status in ('pending', 'awaiting_approval', 'approved');
    elsif new.thread is not null and new.status in ('pending', 'approved')
          and old.status in ('generating', 'awaiting_approval') then
      perform public.thread_create_parts(new.id);  -- a generated thread, ready to post
    elsif new.scheduled_for is distinct from old.scheduled_for and new.status = 'pending' then
      update public.scheduled_tweets s set scheduled_for = new.scheduled_for
      where s.thread_of = new.id and s.status = 'pending';
    end if;
    return null;
  end if;

  select count(*), count(*) filter (where s.status = 'posted')
  into parts, posted
  from public.scheduled_tweets s where s.thread_of = new.thread_of;

  if new.status = 'posting' then
    update public.scheduled_tweets s
    set status = 'posting', post_started_at = coalesce(s.post_started_at, now())
    where s.id = new.thread_of and s.status in ('pending', 'approved');
  elsif new.status = 'posted' then
    update public.scheduled_tweets s
    set thread_tweet_ids = array(select p.tweet_id from public.scheduled_tweets p
                                 where p.thread_of = new.thread_of and p.tweet_id is not null
                                 order by p.thread_position),
        tweet_id = case when new.thread_position = 1 then new.tweet_id else s.tweet_id end,
        status = case when posted = parts then 'posted' else 'posting' end,
        posted_at = case when posted = parts then new.posted_at else s.posted_at end,
        post_started_at = coalesce(s.post_started_at, now()),
        error = null
    where s.id = new.thread_of;
    -- The next part answers this one, and may go now.
    update public.scheduled_tweets s
    set in_reply_to_tweet_id = new.tweet_id,
        job_id = public.enqueue_job('post_tweet', jsonb_build_object('scheduled_tweet_id', s.id),
                                    greatest(s.scheduled_for, now()), 0, 'post_tweet:' || s.id, null)
    where s.thread_of = new.thread_of and s.thread_position = new.thread_position + 1
      and s.status = 'pending' and s.in_reply_to_tweet_id is null;
  elsif new.status in ('failed', 'cancelled') then
    -- The thread first (the parts cancelled next then find it settled), then the parts after.
    update public.scheduled_tweets s
    set status = case when posted = 0 and new.status = 'cancelled' and s.status in ('pending', 'approved')
                      then 'cancelled' else 'failed' end,
        error = pg_catalog.format('part %s of %s %s%s; %s of %s posted', new.thread_position,
                                  parts, new.status, coalesce(': ' || new.error, ''), posted, parts)
    where s.id = new.thread_of and s.status in ('pending', 'approved', 'posting');
    update public.scheduled_tweets s set status = 'cancelled', error = pg_catalog.format(
        'part %s of the thread %s', new.thread_position, new.status)
    where s.thread_of = new.thread_of and s.thread_position > new.thread_position
      and s.status = 'pending';
  end if;
  return null;
end
$$;

drop trigger if exists scheduled_tweets_thread_progress on public.scheduled_tweets;
create trigger scheduled_tweets_thread_progress
  after update of status, scheduled_for on public.scheduled_tweets
  for each row when (new.thread_of is not null or new.thread is not null or new.thread_parts is not null)
  execute function public.scheduled_tweets_thread_progress();

do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('thread_refusal', 'scheduled_tweets_before_insert', 'thread_create_parts',
                        'scheduled_tweets_after_insert_thread', 'scheduled_tweets_thread_order',
                        'scheduled_tweets_thread_progress')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;
