-- Fencing tokens for the job queue.
--
-- Matching writes on `locked_by` alone let a stale run's late outcome through: a worker that
-- re-claims its own reaped job would have the first run's complete_job accepted for the second
-- claim. Every claim now sets a fresh `jobs.lease_token`, returned by claim_jobs, and every later
-- write about that claim must present it. A write whose token is not the job's current one
-- changes nothing and returns false (or no row): a stale worker's outcome is harmless.
--
-- The old signatures are dropped so no caller can keep writing without a token.

alter table public.jobs add column if not exists lease_token uuid;
comment on column public.jobs.lease_token is
  'Fencing token of the current claim: set afresh by claim_jobs, cleared when the claim ends. '
  'complete_job, fail_job, snooze_job, skip_job, heartbeat_jobs, release_jobs and complete_jobs act only '
  'for the claim whose token they are given.';

drop function if exists public.heartbeat_jobs(text, bigint[], interval);
drop function if exists public.complete_job(bigint, text, jsonb);
drop function if exists public.complete_jobs(text, bigint[]);
drop function if exists public.fail_job(bigint, text, text, interval, boolean);
drop function if exists public.snooze_job(bigint, text, timestamptz, text);
drop function if exists public.skip_job(bigint, text, text, jsonb);
drop function if exists public.release_jobs(text, bigint[]);

-- claim_jobs: lease up to `max` due jobs of the given kinds to one worker, each with a new token.
create or replace function public.claim_jobs(
  worker_id text,
  kinds text[],
  max integer default 1,
  lease interval default interval '60 seconds'
) returns setof public.jobs
language sql
security definer
set search_path = ''
-- The O(batch) plan (ordered scan of jobs_claim_idx stopped after `max`), as the batch-scale
-- migration set it: CREATE OR REPLACE resets settings made with ALTER FUNCTION.
set enable_sort = off
set enable_hashjoin = off
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
      lease_token = gen_random_uuid(),
      started_at = now(),
      updated_at = now()
  from picked
  where j.id = picked.id
  returning j.*;
$$;

-- A batch call names its claims by id and token, one token per id (the arrays read in step).
-- Tokens are unique to their claim, so a row matches when its id and its current token are both
-- in the lists, and the lookup stays by primary key (`id = any(ids)`, see the batch-scale
-- migration). True, or an error when the arrays do not pair up.
create or replace function public.check_lease_claims(ids bigint[], lease_tokens uuid[])
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  if coalesce(cardinality(check_lease_claims.ids), 0)
     <> coalesce(cardinality(check_lease_claims.lease_tokens), 0) then
    raise exception 'lease claims: % ids but % lease tokens (one token per id)',
      coalesce(cardinality(check_lease_claims.ids), 0),
      coalesce(cardinality(check_lease_claims.lease_tokens), 0)
      using errcode = '22023';
  end if;
  return true;
end
$$;

-- heartbeat_jobs: extend the leases of the claims this worker still holds; returns those claims
-- (a claim missing from the result is lost: its handler should stop).
create or replace function public.heartbeat_jobs(
  worker_id text,
  ids bigint[],
  lease_tokens uuid[],
  lease interval default interval '60 seconds'
) returns table (id bigint, lease_token uuid)
language sql
security definer
set search_path = ''
as $$
  -- A statement of its own: the check runs whether or not any row matches.
  select public.check_lease_claims(heartbeat_jobs.ids, heartbeat_jobs.lease_tokens);
  update public.jobs j
  set locked_until = now() + heartbeat_jobs.lease, updated_at = now()
  where j.id = any (heartbeat_jobs.ids)
    and j.lease_token = any (heartbeat_jobs.lease_tokens)
    and j.status = 'running'
    and j.locked_by = heartbeat_jobs.worker_id
  returning j.id, j.lease_token;
$$;

-- holds_lease: true when `lease_token` is the current claim of job `id` by `worker_id`. Takes a
-- share lock on the job row, so inside a transaction the lease cannot be reaped or re-claimed
-- until that transaction ends: a handler that checks it together with its own writes (marking a
-- post `posting`) knows those writes are made under the lease.
create or replace function public.holds_lease(id bigint, worker_id text, lease_token uuid)
returns boolean
language sql
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.jobs j
    where j.id = holds_lease.id
      and j.status = 'running'
      and j.locked_by = holds_lease.worker_id
      and j.lease_token = holds_lease.lease_token
    for share
  );
$$;

-- complete_job: mark a held job succeeded. False when the claim is no longer current.
create or replace function public.complete_job(
  id bigint,
  worker_id text,
  lease_token uuid,
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
      lease_token = null,
      finished_at = now(),
      updated_at = now()
  where j.id = complete_job.id
    and j.status = 'running'
    and j.locked_by = complete_job.worker_id
    and j.lease_token = complete_job.lease_token;
  return found;
end
$$;

-- complete_jobs: batch form of complete_job (no result) for high-throughput workers. Returns the
-- ids completed; claims that are no longer current are left alone (and out of the result).
create or replace function public.complete_jobs(worker_id text, ids bigint[], lease_tokens uuid[])
returns setof bigint
language sql
security definer
set search_path = ''
as $$
  -- A statement of its own: the check runs whether or not any row matches.
  select public.check_lease_claims(complete_jobs.ids, complete_jobs.lease_tokens);
  update public.jobs j
  set status = 'succeeded',
      result = null,
      last_error = null,
      locked_by = null,
      locked_until = null,
      lease_token = null,
      finished_at = now(),
      updated_at = now()
  where j.id = any (complete_jobs.ids)
    and j.lease_token = any (complete_jobs.lease_tokens)
    and j.status = 'running'
    and j.locked_by = complete_jobs.worker_id
  returning j.id;
$$;

-- fail_job: record a failure; retry with backoff, or dead-letter. Null when the claim is stale.
--   retry_in   overrides the backoff (e.g. a Retry-After); null means exponential backoff.
--   retryable  false sends the job straight to `dead` (bad payload, refused content ...).
create or replace function public.fail_job(
  id bigint,
  worker_id text,
  lease_token uuid,
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
    and x.lease_token = fail_job.lease_token
  for update;
  if not found then
    return null;  -- lease lost: the claim is over, or another one owns the job now
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
      lease_token = null,
      finished_at = case when new_status = 'dead' then now() end,
      updated_at = now()
  where x.id = j.id;
  return new_status;
end
$$;

-- snooze_job: put a held job back until `until` without counting the attempt
-- (rate-limit resets, quota exhausted, daily caps). False when the claim is stale.
create or replace function public.snooze_job(
  id bigint,
  worker_id text,
  lease_token uuid,
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
      lease_token = null,
      updated_at = now()
  where j.id = snooze_job.id and j.status = 'running' and j.locked_by = snooze_job.worker_id
    and j.lease_token = snooze_job.lease_token;
  return found;
end
$$;

-- skip_job: end a held job as `skipped` (work that must not be attempted: a capability the X
-- access tier lacks), the reason in result.skipped. False when the claim is stale.
create or replace function public.skip_job(
  id bigint,
  worker_id text,
  lease_token uuid,
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
      lease_token = null,
      finished_at = now(),
      updated_at = now()
  where j.id = skip_job.id and j.status = 'running' and j.locked_by = skip_job.worker_id
    and j.lease_token = skip_job.lease_token;
  return found;
end
$$;

-- release_jobs: a worker shutting down hands back claims it has not finished (attempt refunded).
-- Returns how many it released.
create or replace function public.release_jobs(worker_id text, ids bigint[], lease_tokens uuid[])
returns integer
language sql
security definer
set search_path = ''
as $$
  -- A statement of its own: the check runs whether or not any row matches.
  select public.check_lease_claims(release_jobs.ids, release_jobs.lease_tokens);
  with released as (
    update public.jobs j
    set status = 'queued',
        attempts = greatest(j.attempts - 1, 0),
        locked_by = null,
        locked_until = null,
        lease_token = null,
        updated_at = now()
    where j.id = any (release_jobs.ids)
      and j.lease_token = any (release_jobs.lease_tokens)
      and j.status = 'running'
      and j.locked_by = release_jobs.worker_id
    returning 1
  )
  select count(*)::integer from released;
$$;

-- reap_expired_leases: return jobs of crashed workers to the queue (the attempt counts), or
-- dead-letter them when out of attempts. The claim's token is cleared: whatever its worker
-- writes later is refused. Returns how many were reaped.
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
        lease_token = null,
        updated_at = now()
    from expired
    where j.id = expired.id
    returning 1
  )
  select count(*)::integer from reaped;
$$;

-- cancel_job / retry_job: the job leaves (or re-enters) the queue with no claim.
create or replace function public.cancel_job(id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with c as (
    update public.jobs j
    set status = 'cancelled', finished_at = now(), updated_at = now(), locked_by = null,
        locked_until = null, lease_token = null
    where j.id = cancel_job.id and j.status = 'queued'
    returning 1
  )
  select exists (select 1 from c);
$$;

create or replace function public.retry_job(id bigint)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with r as (
    update public.jobs j
    set status = 'queued', attempts = 0, run_at = now(), finished_at = null, updated_at = now(),
        locked_by = null, locked_until = null, lease_token = null
    where j.id = retry_job.id and j.status in ('dead', 'failed', 'cancelled', 'skipped')
    returning 1
  )
  select exists (select 1 from r);
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
      and p.proname in ('claim_jobs', 'check_lease_claims', 'heartbeat_jobs', 'holds_lease',
                        'complete_job', 'complete_jobs', 'fail_job', 'snooze_job', 'skip_job', 'release_jobs',
                        'reap_expired_leases', 'cancel_job', 'retry_job')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
