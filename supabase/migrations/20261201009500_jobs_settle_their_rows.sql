-- A job that ends without its handler writing the row's outcome leaves no row behind.
--
-- generate_tweet and post_tweet move their scheduled_tweets row into an in-flight status
-- (`generating`, `posting`) or leave it waiting for them (`pending`, `approved`). A handler
-- writes the row's outcome when it can; but a job can also end without its handler: reaped to
-- `dead` once its lease ran out max_attempts times (a starved machine, workers killed),
-- dead-lettered by fail_job after an error the handler did not map to the row, cancelled
-- (cancel_job, an operator's UPDATE), skipped. Nothing would ever pick such a row up again: a
-- tweet that never posts and never fails.
--
-- One place settles them all: an AFTER UPDATE OF status trigger on jobs, whose WHEN is false for
-- every transition of the hot path (queued -> running, running -> succeeded, running -> queued),
-- so claiming and completing pay nothing. When a job of a kind that owns a row ends that way, and
-- no other job of the row is live, the row gets a truthful state with a reason an operator can
-- read (settle_job_row, one function per kind):
--
--   generate_tweet  pending/generating       -> failed "generation job 41 dead after 4 attempt(s):
--                                               lease expired: ..." (cancelled when the job was)
--   post_tweet      pending/approved         -> failed "post job 52 dead after 8 attempt(s): ...;
--                                               nothing was posted" (cancelled when the job was).
--                                               Nothing is reserved in these states: no refund.
--                   posting                  -> stays posting: X may have the post (the outcome of
--                                               a call is unknown), so a `reconcile_post` job looks
--                                               for it on the timeline first, after the
--                                               consistency window, and records it (posted) or,
--                                               not there, fails (or cancels) the row and gives
--                                               the post's quota back to its month
--                                               (settle_unposted_post). Never failed blindly,
--                                               never posted twice.
--   reconcile_post  posting                  -> failed "outcome unknown: ...": the post may be on
--                                               X; the quota stays counted (X may have billed it).
--
-- Thread parts, reply drafts and polls are scheduled_tweets rows posted by post_tweet: a settled
-- part fails (or cancels) its thread through the thread triggers, a settled reply post fails
-- (or cancels) its draft through the reply trigger. draft_reply and like_reply own no row in an
-- in-flight status (a draft exists only once written; `replies.liked` only becomes true).
--
-- The row is locked with SKIP LOCKED: a lock held elsewhere (an operator's open transaction)
-- never stalls the reaper or a worker's fail_job. Whatever the trigger could not settle (a
-- locked row, an error, rows stranded before this migration) is settled by a sweep every minute
-- (settle_stranded_scheduled_tweets, pg_cron `chirpbase-settle-rows`); an error raises a
-- `scheduled_tweet_stranded` alert instead of failing the job's own update.
--
-- Retrying the job (retry_job) reopens a row its end failed, where that is safe: a generation
-- that wrote nothing, or a post that never reached X (no reservation held).

insert into public.job_kinds (kind, default_max_attempts, description) values
  ('reconcile_post', 10,
   'Find out whether X has the post of a row whose post job ended while a call''s outcome was unknown; record it or settle the row')
on conflict (kind) do update set description = excluded.description,
  default_max_attempts = excluded.default_max_attempts;

-- scheduled_tweets: cancelling a row cancels its queued jobs after the row changed ------------
-- (An AFTER trigger, so a job that ends settles its row, finds it cancelled already, and leaves
-- it alone: a BEFORE trigger's job update would have the row changed twice by one command.) As
-- before otherwise, and an approved post whose call X certainly did not create goes back to
-- `approved` (unmark_posting), which the approval rule refused.
create or replace function public.scheduled_tweets_before_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.updated_at := now();

  if new.status is distinct from old.status then
    if new.status = 'cancelled' then
      if old.status in ('posting', 'posted', 'failed', 'rejected', 'cancelled') then
        raise exception 'scheduled_tweets %: cannot cancel a tweet that is %', old.id, old.status
          using errcode = '23514';
      end if;
      -- its queued jobs: scheduled_tweets_cancel_jobs, once the row is cancelled
    elsif new.status = 'approved' then
      if old.status = 'posting' and old.approved_at is not null then
        null;  -- back to approved: X created nothing; the post job that marked it still owns it
      elsif old.status <> 'awaiting_approval' then
        raise exception 'scheduled_tweets %: only a tweet awaiting approval can be approved (it is %)',
          old.id, old.status using errcode = '23514';
      else
        new.approved_at := now();
        new.job_id := public.enqueue_job('post_tweet', jsonb_build_object('scheduled_tweet_id', old.id),
          greatest(new.scheduled_for, now()), 0, 'post_tweet:' || old.id, null);
      end if;
    elsif new.status = 'rejected' then
      if old.status <> 'awaiting_approval' then
        raise exception 'scheduled_tweets %: only a tweet awaiting approval can be rejected (it is %)',
          old.id, old.status using errcode = '23514';
      end if;
    elsif old.status in ('posted', 'cancelled', 'rejected') then
      raise exception 'scheduled_tweets %: % is final', old.id, old.status using errcode = '23514';
    end if;
  end if;

  if new.scheduled_for is distinct from old.scheduled_for
     and (new.scheduled_for < now() - interval '1 day' or new.scheduled_for > now() + interval '1 year') then
    raise exception 'scheduled_tweets %: scheduled_for % is outside the allowed window (a day ago to a year ahead)',
      old.id, new.scheduled_for using errcode = '23514';
  end if;
  if new.scheduled_for is distinct from old.scheduled_for and old.status = 'pending' then
    update public.jobs j
    set run_at = new.scheduled_for, updated_at = now()
    where (j.payload ->> 'scheduled_tweet_id')::bigint = old.id
      and j.payload ? 'scheduled_tweet_id'
      and j.status = 'queued';
  end if;
  return new;
end
$$;

create or replace function public.scheduled_tweets_cancel_jobs()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.jobs j
  set status = 'cancelled', finished_at = now(), updated_at = now()
  where (j.payload ->> 'scheduled_tweet_id')::bigint = new.id
    and j.payload ? 'scheduled_tweet_id'
    and j.status = 'queued';
  return null;
end
$$;

drop trigger if exists scheduled_tweets_cancel_jobs on public.scheduled_tweets;
create trigger scheduled_tweets_cancel_jobs
  after update of status on public.scheduled_tweets
  for each row when (new.status = 'cancelled' and old.status is distinct from 'cancelled')
  execute function public.scheduled_tweets_cancel_jobs();

-- How a job ended, said for the row it owned: "post job 52 dead after 8 attempt(s): ...". -------
create or replace function public.job_end_reason(j public.jobs, what text)
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
  return case j.status
    when 'cancelled' then pg_catalog.format('%s job %s was cancelled', what, j.id)
    when 'skipped' then pg_catalog.format('%s job %s was skipped: %s', what, j.id,
                                          coalesce(j.result ->> 'skipped', 'no reason recorded'))
    else pg_catalog.format('%s job %s %s after %s attempt(s): %s', what, j.id, j.status, j.attempts,
                           coalesce(left(j.last_error, 500), 'no error recorded'))
  end;
end
$$;

-- The kinds that own a scheduled_tweets row (payload scheduled_tweet_id) until it is settled.
create or replace function public.job_owns_row(kind text)
returns boolean
language sql
immutable
set search_path = ''
as $$
  select job_owns_row.kind in ('generate_tweet', 'post_tweet', 'reconcile_post');
$$;

-- The scheduled_tweets id a job's payload names, or null (none, or not an id).
create or replace function public.job_row_id(payload jsonb)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select case when job_row_id.payload ->> 'scheduled_tweet_id' ~ '^[0-9]{1,18}$'
              then (job_row_id.payload ->> 'scheduled_tweet_id')::bigint end;
$$;

-- generate_tweet ended: a row still waiting for its text fails (or is cancelled) with the reason.
create or replace function public.settle_generation_row(j public.jobs, s public.scheduled_tweets)
returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
  if s.status not in ('pending', 'generating') or s.topic is null or s.content is not null
     or s.thread is not null then
    return null;  -- written already: the post's job owns it now (or it is settled)
  end if;
  if j.status = 'cancelled' then
    update public.scheduled_tweets x
    set status = 'cancelled', error = public.job_end_reason(j, 'generation') || ' before the text was written'
    where x.id = s.id;
    return 'cancelled';
  end if;
  update public.scheduled_tweets x set status = 'failed', error = public.job_end_reason(j, 'generation')
  where x.id = s.id;
  return 'failed';
end
$$;

-- post_tweet ended. Ready rows (pending, approved) hold no reservation and X has nothing: they
-- fail (or are cancelled). A row in `posting` may be on X: a reconcile_post job finds out first.
create or replace function public.settle_post_row(j public.jobs, s public.scheduled_tweets)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  reason text := public.job_end_reason(j, 'post');
  reconciler bigint;
begin
  if s.content is null or s.thread is not null or s.status not in ('pending', 'approved', 'posting') then
    return null;  -- not this job's to settle (a thread is posted by its parts), or settled
  end if;
  if s.status = 'posting' then
    reconciler := public.enqueue_job('reconcile_post',
      jsonb_build_object('scheduled_tweet_id', s.id, 'post_job_id', j.id, 'ended', j.status,
                         'reason', reason),
      now(), 5, null, null);
    update public.scheduled_tweets x
    set job_id = reconciler,
        error = pg_catalog.format(
          '%s; the outcome of a call to X is unknown: reconcile_post job %s looks for the post on '
          'the account''s timeline before anything else', reason, reconciler)
    where x.id = s.id;
    return 'reconciling';
  end if;
  update public.scheduled_tweets x
  set status = case when j.status = 'cancelled' then 'cancelled' else 'failed' end,
      error = reason || '; nothing was posted'
  where x.id = s.id;
  return case when j.status = 'cancelled' then 'cancelled' else 'failed' end;
end
$$;

-- reconcile_post ended without an answer (X unreachable for all its attempts, its lease lost):
-- the outcome stays unknown. The row fails saying so; its quota stays counted.
create or replace function public.settle_reconciled_row(j public.jobs, s public.scheduled_tweets)
returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
  if s.status <> 'posting' then
    return null;
  end if;
  update public.scheduled_tweets x
  set status = 'failed',
      error = pg_catalog.format(
        'outcome unknown: %s; %s. The post may be on X: look at the account''s timeline before '
        'scheduling it again (its posts quota stays counted, as X may have billed it)',
        coalesce(j.payload ->> 'reason', pg_catalog.format('post job %s ended', j.payload ->> 'post_job_id')),
        public.job_end_reason(j, 'reconciliation'))
  where x.id = s.id;
  return 'failed';
end
$$;

-- settle_job_row: the row a job owned, once the job ended (dead, failed, cancelled, skipped) and
-- no other job of the row is live. Returns what became of the row ('failed', 'cancelled',
-- 'reconciling'), or null when there was nothing to do or the row is locked (the sweep comes back
-- to it). Never raises: the job's own update (a reap, a fail_job) must go through.
create or replace function public.settle_job_row(j public.jobs)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  row_id bigint := public.job_row_id(j.payload);
  s public.scheduled_tweets;
  outcome text;
begin
  if not public.job_owns_row(j.kind) or j.status not in ('dead', 'failed', 'cancelled', 'skipped')
     or row_id is null then
    return null;
  end if;
  begin
    select * into s from public.scheduled_tweets x where x.id = row_id for update skip locked;
    if not found then
      return null;
    end if;
    if exists (select 1 from public.jobs o
               where (o.payload ->> 'scheduled_tweet_id')::bigint = row_id
                 and o.payload ? 'scheduled_tweet_id'
                 and o.id <> j.id and public.job_owns_row(o.kind)
                 and o.status in ('queued', 'running')) then
      return null;  -- a live job owns the row now
    end if;
    outcome := case j.kind
      when 'generate_tweet' then public.settle_generation_row(j, s)
      when 'post_tweet' then public.settle_post_row(j, s)
      else public.settle_reconciled_row(j, s)
    end;
    if outcome is not null then
      perform public.close_alert('scheduled_tweet_stranded:' || row_id, 'settled: ' || outcome);
    end if;
    return outcome;
  exception when others then
    perform public.raise_alert(
      'critical', 'scheduled_tweet_stranded', 'scheduled_tweet_stranded:' || row_id,
      pg_catalog.format('scheduled_tweets row %s could not be settled after its %s job %s ended %s: %s',
                        row_id, j.kind, j.id, j.status, sqlerrm),
      jsonb_build_object('scheduled_tweet_id', row_id, 'job_id', j.id, 'kind', j.kind,
                         'sqlstate', sqlstate));
    return null;
  end;
end
$$;

-- reopen_job_row: a job its operator runs again (retry_job) takes back the row its end failed,
-- where that is safe: a generation that wrote nothing, or a post that never reached X (no
-- reservation held, no thread, no reply draft whose own outcome is final). Returns 'pending' or
-- null.
create or replace function public.reopen_job_row(j public.jobs)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  s public.scheduled_tweets;
begin
  if j.kind not in ('generate_tweet', 'post_tweet') or j.status <> 'queued'
     or public.job_row_id(j.payload) is null then
    return null;
  end if;
  select * into s from public.scheduled_tweets x where x.id = public.job_row_id(j.payload) for update;
  if not found or s.status <> 'failed' or s.job_id is distinct from j.id then
    return null;
  end if;
  if (j.kind = 'generate_tweet' and s.topic is not null and s.content is null and s.thread is null)
     or (j.kind = 'post_tweet' and s.content is not null and s.tweet_id is null
         and s.post_started_at is null and s.thread is null and s.thread_of is null
         and s.reply_draft_id is null) then
    update public.scheduled_tweets x
    set status = 'pending',
        error = pg_catalog.format('%s job %s retried (it had ended: %s)',
                                  case j.kind when 'generate_tweet' then 'generation' else 'post' end,
                                  j.id, left(s.error, 300))
    where x.id = s.id;
    return 'pending';
  end if;
  return null;
end
$$;

create or replace function public.jobs_settle_owned_row()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'queued' then
    perform public.reopen_job_row(new);
  else
    perform public.settle_job_row(new);
  end if;
  return null;
end
$$;

-- False for queued -> running, running -> succeeded and running -> queued: the hot path pays
-- nothing but this test.
drop trigger if exists jobs_settle_owned_row on public.jobs;
create trigger jobs_settle_owned_row
  after update of status on public.jobs
  for each row
  when (new.kind in ('generate_tweet', 'post_tweet', 'reconcile_post')
        and new.status is distinct from old.status
        and (new.status in ('dead', 'failed', 'cancelled', 'skipped')
             or (new.status = 'queued' and old.status in ('dead', 'failed', 'cancelled', 'skipped'))))
  execute function public.jobs_settle_owned_row();

-- settle_unposted_post: reconciliation found no post on X once the consistency window had
-- passed: X created nothing. The reservation goes back to its month and the row fails (or, when
-- its post job was cancelled, is cancelled), in one transaction. Null, changing nothing, when the
-- row is no longer posting or a post job of the row is live again (it reconciles first itself).
create or replace function public.settle_unposted_post(scheduled_tweet_id bigint, outcome text, error text)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  s public.scheduled_tweets;
begin
  if settle_unposted_post.outcome not in ('failed', 'cancelled') then
    raise exception 'settle_unposted_post: outcome must be failed or cancelled, got %',
      coalesce(settle_unposted_post.outcome, 'null') using errcode = '22023';
  end if;
  select * into s from public.scheduled_tweets x where x.id = settle_unposted_post.scheduled_tweet_id
  for update;
  if not found or s.status <> 'posting' then
    return null;
  end if;
  if exists (select 1 from public.jobs j
             where (j.payload ->> 'scheduled_tweet_id')::bigint = s.id and j.payload ? 'scheduled_tweet_id'
               and j.kind = 'post_tweet' and j.status in ('queued', 'running')) then
    return null;
  end if;
  perform public.refund_quota('posts', 1, public.post_reservation_month(s.id));
  if settle_unposted_post.outcome = 'cancelled' then
    -- posting -> cancelled is refused (X may have the post); it is known not to now.
    update public.scheduled_tweets x set status = 'pending', post_started_at = null, reconcile_after = null
    where x.id = s.id;
  end if;
  update public.scheduled_tweets x
  set status = settle_unposted_post.outcome, error = left(settle_unposted_post.error, 2000)
  where x.id = s.id;
  return settle_unposted_post.outcome;
end
$$;

-- stranded_scheduled_tweets: rows left behind: in an in-flight status, no live job of theirs,
-- and the newest one ended without settling them. Normally none (the trigger settles them at
-- once); the sweep below works from it. A function, not a view: a view would pin the types of the
-- jobs columns it reads.
create or replace function public.stranded_scheduled_tweets()
returns table (id bigint, status text, updated_at timestamptz, job_id bigint, job_kind text,
               job_status text, job_error text)
language sql
stable
security definer
set search_path = ''
as $$
  select s.id, s.status, s.updated_at, last.id, last.kind, last.status, last.last_error
  from public.scheduled_tweets s
  cross join lateral (
    select j.id, j.kind, j.status, j.last_error
    from public.jobs j
    where (j.payload ->> 'scheduled_tweet_id')::bigint = s.id and j.payload ? 'scheduled_tweet_id'
      and public.job_owns_row(j.kind)
    order by j.id desc
    limit 1
  ) last
  where s.status in ('pending', 'generating', 'approved', 'posting')
    and last.status in ('dead', 'failed', 'cancelled', 'skipped')
    and not exists (
      select 1 from public.jobs o
      where (o.payload ->> 'scheduled_tweet_id')::bigint = s.id and o.payload ? 'scheduled_tweet_id'
        and public.job_owns_row(o.kind) and o.status in ('queued', 'running'))
  order by s.id;
$$;

-- settle_stranded_scheduled_tweets: the sweep (pg_cron, every minute): settle what the trigger
-- could not, and resolve the stranded alerts of rows settled since (here, or by hand). Returns
-- how many rows it settled.
create or replace function public.settle_stranded_scheduled_tweets(max_rows integer default 500)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  r record;
  j public.jobs;
  n integer := 0;
begin
  for r in
    select st.job_id from public.stranded_scheduled_tweets() st
    order by st.id limit greatest(coalesce(settle_stranded_scheduled_tweets.max_rows, 500), 0)
  loop
    select * into j from public.jobs x where x.id = r.job_id;
    if found and public.settle_job_row(j) is not null then
      n := n + 1;
    end if;
  end loop;
  for r in
    select a.dedupe_key, a.details ->> 'scheduled_tweet_id' as row_id
    from public.alerts a
    where a.kind = 'scheduled_tweet_stranded' and a.resolved_at is null
  loop
    if not exists (select 1 from public.stranded_scheduled_tweets() st where st.id::text = r.row_id) then
      perform public.close_alert(r.dedupe_key, 'the row is settled');
    end if;
  end loop;
  return n;
end
$$;

-- pg_cron: the sweep, beside the other chirpbase-* schedules ----------------------------------
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
  -- Rows whose jobs ended without settling them (a locked row, an error): settled a minute later.
  perform cron.schedule('chirpbase-settle-rows', '* * * * *',
    'select public.settle_stranded_scheduled_tweets()');
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
  return n + 7;
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
      and p.proname in ('scheduled_tweets_before_update', 'scheduled_tweets_cancel_jobs',
                        'job_end_reason', 'job_owns_row', 'job_row_id', 'settle_generation_row', 'settle_post_row',
                        'settle_reconciled_row', 'settle_job_row', 'reopen_job_row',
                        'jobs_settle_owned_row', 'settle_unposted_post',
                        'stranded_scheduled_tweets', 'settle_stranded_scheduled_tweets',
                        'sync_schedules')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;

select public.sync_schedules();
-- Rows this migration finds left behind already (jobs that ended before it): settled now.
select public.settle_stranded_scheduled_tweets();
