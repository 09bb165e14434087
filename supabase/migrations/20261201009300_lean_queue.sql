-- A lean hot path for the job queue: fencing tokens from a sequence, plans kept, one index less.
--
-- * Fencing tokens are bigints drawn from `jobs_lease_token_seq` instead of random UUIDs. A token
--   is still fresh per claim and never reused, and now also increases with every claim, the
--   usual form of a fencing token: a later claim of a job always holds a larger token than the
--   one before. Half the bytes in the row and in every call, and a worker handles integers
--   instead of building and printing UUIDs (measured in bench/queue_peers.py: about 5 us of
--   client CPU per job for a batch consumer).
--   Claims running when this migration is applied lose their token: their workers' later writes
--   change nothing (the functions taking UUIDs are gone) and reaping returns the jobs when their
--   leases end, as after a crash. Stop the worker, migrate, start the new worker.
--
-- * claim_jobs and complete_jobs are plpgsql: their statements are planned once per session and
--   the plan is kept, where a SQL function's body is planned again on every call (a 1-job claim
--   took ~0.6 ms, 0.2-0.4 ms with the kept plan).
--
-- * jobs_queued_run_at_idx is dropped. Its only reader was the worker's next_run_at (the earliest
--   future job of its kinds), which jobs_claim_idx, partial on the same `status = 'queued'`,
--   serves as well: the queued set is what both index. Every enqueued job cost one index entry
--   more than it needed (~1.5 us of ~9 us server time per job in a batch insert).
--
-- * No per-row work on updates that a job's life does not need. Claims and completions are
--   UPDATEs of every job, and PostgreSQL 15 pays for things there that never change:
--   - The kind check on updates was a BEFORE UPDATE OF kind row trigger. A BEFORE row trigger
--     makes every UPDATE fetch and lock the old row again before its column list is looked at
--     (GetTupleForTrigger, with a row lock: 3-5% of the backend time of claiming and completing
--     a batch). Nothing in chirpbase changes a job's kind; a statement that does is now
--     checked once, after it, over the whole table (AFTER UPDATE OF kind FOR EACH STATEMENT),
--     with the same error.
--   - The payload check (`jsonb_typeof(payload) = 'object'`) was a table CHECK, evaluated on
--     every UPDATE whether the payload changed or not (detoasting it each time). It is now the
--     domain `job_payload`, checked where a payload is written: inserts, and updates that set
--     it. Converting the column rewrites `jobs` once (the domain has a constraint).

drop function if exists public.heartbeat_jobs(text, bigint[], uuid[], interval);
drop function if exists public.holds_lease(bigint, text, uuid);
drop function if exists public.complete_job(bigint, text, uuid, jsonb);
drop function if exists public.complete_jobs(text, bigint[], uuid[]);
drop function if exists public.fail_job(bigint, text, uuid, text, interval, boolean);
drop function if exists public.snooze_job(bigint, text, uuid, timestamptz, text);
drop function if exists public.skip_job(bigint, text, uuid, text, jsonb);
drop function if exists public.release_jobs(text, bigint[], uuid[]);
drop function if exists public.check_lease_claims(bigint[], uuid[]);

create sequence if not exists public.jobs_lease_token_seq as bigint;
do $$
begin
  -- Once: re-running this migration leaves the tokens of current claims alone.
  if (select a.atttypid from pg_catalog.pg_attribute a
      where a.attrelid = 'public.jobs'::regclass and a.attname = 'lease_token'
        and not a.attisdropped) = 'uuid'::regtype then
    alter table public.jobs alter column lease_token type bigint using null;
  end if;
end
$$;
alter sequence public.jobs_lease_token_seq owned by public.jobs.lease_token;
comment on column public.jobs.lease_token is
  'Fencing token of the current claim: drawn from jobs_lease_token_seq by claim_jobs (a later claim '
  'always holds a larger token), cleared when the claim ends. complete_job, fail_job, snooze_job, '
  'skip_job, heartbeat_jobs, release_jobs and complete_jobs act only for the claim whose token they '
  'are given.';
revoke all on sequence public.jobs_lease_token_seq from public, anon, authenticated;

drop index if exists public.jobs_queued_run_at_idx;

-- The kind check on updates, once per statement. ---------------------------------------------
create or replace function public.jobs_check_updated_kinds()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  bad text;
begin
  -- Only statements that set `kind` get here (none of chirpbase's): one pass over the table.
  select j.kind into bad from public.jobs j
  where not exists (select 1 from public.job_kinds k where k.kind = j.kind)
  limit 1;
  if found then
    perform public.job_kind_attempts(bad);  -- raises 'unknown job kind', naming the known ones
  end if;
  return null;
end
$$;

drop trigger if exists jobs_check_kind on public.jobs;
drop trigger if exists jobs_check_updated_kinds on public.jobs;
create trigger jobs_check_updated_kinds
  after update of kind on public.jobs
  for each statement execute function public.jobs_check_updated_kinds();

-- The payload check where a payload is written. -----------------------------------------------
do $$
begin
  if to_regtype('public.job_payload') is null then
    create domain public.job_payload as jsonb
      constraint job_payload_is_object check (jsonb_typeof(value) = 'object');
  end if;
end
$$;
comment on domain public.job_payload is
  'A job''s payload: a JSON object. Checked where a payload is written, not on every update.';
alter table public.jobs drop constraint if exists jobs_payload_check;
do $$
begin
  if (select a.atttypid from pg_catalog.pg_attribute a
      where a.attrelid = 'public.jobs'::regclass and a.attname = 'payload'
        and not a.attisdropped) = 'jsonb'::regtype then
    alter table public.jobs alter column payload type public.job_payload;
  end if;
end
$$;

-- claim_jobs: lease up to `max` due jobs of the given kinds to one worker, each with a new token.
-- plpgsql, so its statement is planned once per session and the plan kept (a SQL function's body
-- is planned again on every call); the plan is the generic one (`force_generic_plan`), made with
-- sorts and hash joins disabled: the ordered scan of jobs_claim_idx stopped after `max` rows,
-- joined by primary key, whatever the statistics (tests/sql/test_queue_scale.py checks it).
create or replace function public.claim_jobs(
  worker_id text,
  kinds text[],
  max integer default 1,
  lease interval default interval '60 seconds'
) returns setof public.jobs
language plpgsql
security definer
set search_path = ''
set enable_sort = off
set enable_hashjoin = off
set plan_cache_mode = force_generic_plan
as $$
begin
  return query
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
      lease_token = nextval('public.jobs_lease_token_seq'),
      started_at = now(),
      updated_at = now()
  from picked
  where j.id = picked.id
  returning j.*;
end
$$;

-- A batch call names its claims by id and token, one token per id (the arrays read in step).
-- Tokens are unique to their claim, so a row matches when its id and its current token are both
-- in the lists, and the lookup stays by primary key (`id = any(ids)`, see the batch-scale
-- migration). True, or an error when the arrays do not pair up.
create or replace function public.check_lease_claims(ids bigint[], lease_tokens bigint[])
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
  lease_tokens bigint[],
  lease interval default interval '60 seconds'
) returns table (id bigint, lease_token bigint)
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
create or replace function public.holds_lease(id bigint, worker_id text, lease_token bigint)
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
  lease_token bigint,
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
-- plpgsql with a kept generic plan, as claim_jobs: the lookup is by primary key.
create or replace function public.complete_jobs(worker_id text, ids bigint[], lease_tokens bigint[])
returns setof bigint
language plpgsql
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  perform public.check_lease_claims(complete_jobs.ids, complete_jobs.lease_tokens);
  return query
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
end
$$;

-- fail_job: record a failure; retry with backoff, or dead-letter. Null when the claim is stale.
--   retry_in   overrides the backoff (e.g. a Retry-After); null means exponential backoff.
--   retryable  false sends the job straight to `dead` (bad payload, refused content ...).
create or replace function public.fail_job(
  id bigint,
  worker_id text,
  lease_token bigint,
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
  lease_token bigint,
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
  lease_token bigint,
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
create or replace function public.release_jobs(worker_id text, ids bigint[], lease_tokens bigint[])
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
                        'complete_job', 'complete_jobs', 'fail_job', 'snooze_job', 'skip_job',
                        'release_jobs', 'jobs_check_updated_kinds')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
