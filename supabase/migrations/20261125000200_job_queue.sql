-- The job queue's SQL API: the only way the worker touches `jobs`.
--
-- Semantics live here so every client (worker replicas, pg_cron, edge functions, psql) gets the
-- same guarantees: SKIP LOCKED claiming with leases, heartbeats, exponential backoff with jitter,
-- dead-lettering, snoozing that does not burn attempts, and reaping of crashed workers' leases.

-- Refuse unknown kinds at the door, with the list of known ones.
create or replace function public.jobs_check_kind()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.job_kinds k where k.kind = new.kind) then
    raise exception 'unknown job kind "%"', new.kind
      using errcode = '22023',
            hint = 'known kinds: ' || (select string_agg(kind, ', ' order by kind) from public.job_kinds);
  end if;
  return new;
end
$$;

drop trigger if exists jobs_check_kind on public.jobs;
create trigger jobs_check_kind
  before insert or update of kind on public.jobs
  for each row execute function public.jobs_check_kind();

-- enqueue_job: insert a job, or return the existing one with the same dedupe_key.
create or replace function public.enqueue_job(
  kind text,
  payload jsonb default '{}'::jsonb,
  run_at timestamptz default null,
  priority integer default 0,
  dedupe_key text default null,
  max_attempts integer default null
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  new_id bigint;
begin
  if payload is null or jsonb_typeof(payload) <> 'object' then
    raise exception 'job payload must be a JSON object, got %', coalesce(jsonb_typeof(payload), 'null')
      using errcode = '22023';
  end if;
  -- jobs are indexed (and cancelled) by this id as a bigint: say so instead of failing the cast.
  if payload ? 'scheduled_tweet_id'
     and coalesce(payload ->> 'scheduled_tweet_id', '') !~ '^[0-9]{1,18}$' then
    raise exception 'job payload scheduled_tweet_id must be a scheduled_tweets id (a positive integer), got %',
      left((payload -> 'scheduled_tweet_id')::text, 100) using errcode = '22023';
  end if;
  insert into public.jobs as j (kind, payload, run_at, priority, dedupe_key, max_attempts)
  values (
    enqueue_job.kind,
    enqueue_job.payload,
    coalesce(enqueue_job.run_at, now()),
    coalesce(enqueue_job.priority, 0),
    enqueue_job.dedupe_key,
    coalesce(enqueue_job.max_attempts,
             (select k.default_max_attempts from public.job_kinds k where k.kind = enqueue_job.kind),
             5)
  )
  on conflict (dedupe_key) where dedupe_key is not null do nothing
  returning j.id into new_id;

  if new_id is null then
    select j.id into new_id from public.jobs j where j.dedupe_key = enqueue_job.dedupe_key;
  end if;
  return new_id;
end
$$;

-- claim_jobs: lease up to `max` due jobs of the given kinds to one worker.
create or replace function public.claim_jobs(
  worker_id text,
  kinds text[],
  max integer default 1,
  lease interval default interval '60 seconds'
) returns setof public.jobs
language sql
security definer
set search_path = ''
as $$
  with picked as (
    select j.id
    from public.jobs j
    where j.status = 'queued'
      and j.run_at <= now()
      and j.kind = any (claim_jobs.kinds)
      -- A job claimed by no one could be completed by no one: an anonymous claim takes nothing.
      and coalesce(claim_jobs.worker_id, '') <> ''
    order by j.priority desc, j.run_at, j.id
    limit greatest(claim_jobs.max, 0)
    for update skip locked
  )
  update public.jobs j
  set status = 'running',
      attempts = j.attempts + 1,
      locked_by = claim_jobs.worker_id,
      locked_until = now() + claim_jobs.lease,
      started_at = now(),
      updated_at = now()
  from picked
  where j.id = picked.id
  returning j.*;
$$;

-- heartbeat_jobs: extend the lease of jobs this worker still holds; returns those ids.
create or replace function public.heartbeat_jobs(
  worker_id text,
  ids bigint[],
  lease interval default interval '60 seconds'
) returns setof bigint
language sql
security definer
set search_path = ''
as $$
  update public.jobs j
  set locked_until = now() + heartbeat_jobs.lease, updated_at = now()
  where j.id = any (heartbeat_jobs.ids)
    and j.status = 'running'
    and j.locked_by = heartbeat_jobs.worker_id
  returning j.id;
$$;

-- complete_job: mark a held job succeeded. False when the worker no longer holds it.
create or replace function public.complete_job(
  id bigint,
  worker_id text,
  result jsonb default null
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  update public.jobs j
  set status = 'succeeded',
      result = complete_job.result,
      last_error = null,
      locked_by = null,
      locked_until = null,
      finished_at = now(),
      updated_at = now()
  where j.id = complete_job.id
    and j.status = 'running'
    and j.locked_by = complete_job.worker_id;
  return found;
end
$$;

-- complete_jobs: batch form of complete_job (no result) for high-throughput workers. Returns the
-- ids completed; ids this worker no longer holds are left alone (and left out of the result).
create or replace function public.complete_jobs(worker_id text, ids bigint[])
returns setof bigint
language sql
security definer
set search_path = ''
as $$
  update public.jobs j
  set status = 'succeeded',
      result = null,
      last_error = null,
      locked_by = null,
      locked_until = null,
      finished_at = now(),
      updated_at = now()
  where j.id = any (complete_jobs.ids)
    and j.status = 'running'
    and j.locked_by = complete_jobs.worker_id
  returning j.id;
$$;

-- retry_delay: exponential backoff (5 s, 10 s, 20 s ...) with +/-25 % jitter, capped at 1 h
-- (the cap applies after the jitter, so no retry waits longer than an hour).
create or replace function public.retry_delay(attempts integer)
returns interval
language sql
volatile
set search_path = ''
as $$
  select make_interval(secs => least(3600.0,
    5.0 * power(2.0, least(greatest(retry_delay.attempts, 1), 30) - 1) * (0.75 + random() * 0.5)));
$$;

-- fail_job: record a failure; retry with backoff, or dead-letter.
--   retry_in   overrides the backoff (e.g. a Retry-After); null means exponential backoff.
--   retryable  false sends the job straight to `dead` (bad payload, refused content ...).
create or replace function public.fail_job(
  id bigint,
  worker_id text,
  error text,
  retry_in interval default null,
  retryable boolean default true
) returns text
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  j public.jobs;
  new_status text;
begin
  select * into j from public.jobs x
  where x.id = fail_job.id and x.status = 'running' and x.locked_by = fail_job.worker_id
  for update;
  if not found then
    return null;  -- lease lost: another worker owns the job now
  end if;

  if not coalesce(fail_job.retryable, true) or j.attempts >= j.max_attempts then
    new_status := 'dead';
  else
    new_status := 'queued';
  end if;

  update public.jobs x
  set status = new_status,
      last_error = left(fail_job.error, 4000),
      run_at = case when new_status = 'queued'
                    then now() + coalesce(fail_job.retry_in, public.retry_delay(j.attempts))
                    else x.run_at end,
      locked_by = null,
      locked_until = null,
      finished_at = case when new_status = 'dead' then now() end,
      updated_at = now()
  where x.id = j.id;
  return new_status;
end
$$;

-- snooze_job: put a held job back until `until` without counting the attempt
-- (rate-limit resets, quota exhausted, daily caps). Returns false when not held.
create or replace function public.snooze_job(
  id bigint,
  worker_id text,
  until timestamptz,
  reason text default null
) returns boolean
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  update public.jobs j
  set status = 'queued',
      attempts = greatest(j.attempts - 1, 0),
      run_at = greatest(snooze_job.until, now()),
      last_error = coalesce(snooze_job.reason, j.last_error),
      locked_by = null,
      locked_until = null,
      updated_at = now()
  where j.id = snooze_job.id and j.status = 'running' and j.locked_by = snooze_job.worker_id;
  return found;
end
$$;

-- release_jobs: a worker shutting down hands back jobs it has not started on (attempt refunded).
create or replace function public.release_jobs(worker_id text, ids bigint[])
returns integer
language sql
security definer
set search_path = ''
as $$
  with released as (
    update public.jobs j
    set status = 'queued',
        attempts = greatest(j.attempts - 1, 0),
        locked_by = null,
        locked_until = null,
        updated_at = now()
    where j.id = any (release_jobs.ids) and j.status = 'running' and j.locked_by = release_jobs.worker_id
    returning 1
  )
  select count(*)::integer from released;
$$;

-- reap_expired_leases: return jobs of crashed workers to the queue (the attempt counts),
-- or dead-letter them when out of attempts. Returns how many were reaped.
create or replace function public.reap_expired_leases()
returns integer
language sql
security definer
set search_path = ''
as $$
  with expired as (
    select j.id from public.jobs j
    where j.status = 'running' and j.locked_until < now()
    for update skip locked
  ), reaped as (
    update public.jobs j
    set status = case when j.attempts >= j.max_attempts then 'dead' else 'queued' end,
        last_error = 'lease expired: worker ' || coalesce(j.locked_by, '?') || ' stopped heartbeating',
        run_at = now(),
        finished_at = case when j.attempts >= j.max_attempts then now() end,
        locked_by = null,
        locked_until = null,
        updated_at = now()
    from expired
    where j.id = expired.id
    returning 1
  )
  select count(*)::integer from reaped;
$$;

-- cancel_job: cancel a queued job (running jobs finish; handlers re-check their source row).
create or replace function public.cancel_job(id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with c as (
    update public.jobs j
    set status = 'cancelled', finished_at = now(), updated_at = now(), locked_by = null, locked_until = null
    where j.id = cancel_job.id and j.status = 'queued'
    returning 1
  )
  select exists (select 1 from c);
$$;

-- retry_job: give a dead, failed or cancelled job a fresh set of attempts.
create or replace function public.retry_job(id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with r as (
    update public.jobs j
    set status = 'queued', attempts = 0, run_at = now(), finished_at = null, updated_at = now()
    where j.id = retry_job.id and j.status in ('dead', 'failed', 'cancelled')
    returning 1
  )
  select exists (select 1 from r);
$$;

-- prune_finished_jobs: keep the hot table small.
create or replace function public.prune_finished_jobs(older_than interval default interval '7 days')
returns integer
language sql
security definer
set search_path = ''
as $$
  with d as (
    delete from public.jobs j
    where j.status in ('succeeded', 'cancelled', 'dead', 'failed')
      and j.finished_at < now() - prune_finished_jobs.older_than
    returning 1
  )
  select count(*)::integer from d;
$$;

-- Dead jobs raise an alert (one open alert per kind).
create or replace function public.jobs_alert_on_dead()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'dead' and old.status is distinct from 'dead' then
    perform public.raise_alert(
      'critical', 'job_dead', 'job_dead:' || new.kind,
      format('%s job %s is dead after %s attempt(s): %s', new.kind, new.id, new.attempts,
             coalesce(left(new.last_error, 300), 'no error recorded')),
      jsonb_build_object('job_id', new.id, 'kind', new.kind, 'attempts', new.attempts));
  end if;
  return new;
end
$$;
