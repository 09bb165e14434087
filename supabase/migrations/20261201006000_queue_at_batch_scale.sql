-- The queue at batch scale: a set-based enqueue, and claim/complete plans that stay O(batch)
-- whatever the table's statistics say.
--
-- Measured with bench/queue_peers.py (bench/README.md has the figures):
--
-- * `enqueue_job` costs one security-definer plpgsql call per job (~125 us a job here, against
--   ~30 us for the same rows inserted by one statement). `enqueue_jobs` below inserts a whole
--   batch with one INSERT, with the same checks, defaults and dedupe rule.
--
-- * The kind check was a BEFORE INSERT row trigger: a plpgsql call and a lookup per row, more
--   than half the cost of a batch insert (32,000 rows/s with it, 71,000 without). Inserts are
--   now checked once per statement, over the statement's new rows (an AFTER INSERT statement
--   trigger with a transition table: an unknown kind still aborts the whole statement, with the
--   same error); changes of kind keep the row trigger. enqueue_job and enqueue_jobs check the
--   kind themselves before inserting, so a call with an unknown kind is refused even when its
--   dedupe key already exists (a conflicting row is never inserted, so no trigger sees it).
--
-- * `claim_jobs` is a SQL function, and PostgreSQL 15 plans a non-inlined SQL function's body
--   generically: `max` (the LIMIT) and `kinds` are parameters, so the planner assumes the LIMIT
--   keeps 10% of the rows. With a backlog it then either sorts every queued job (a bitmap scan
--   of jobs_queued_run_at_idx, then Sort: ~9 ms per claim of 100 at 10,000 queued) or hash-joins
--   the whole table for the UPDATE (a Seq Scan on jobs per claim). Both grow with the backlog.
--   The only plan that is O(batch) is the ordered scan of jobs_claim_idx, stopped after `max`
--   rows, with the UPDATE joined by primary key; with sorts and hash joins disabled inside the
--   function it is the only plan left, so it no longer depends on statistics (a fresh burst of
--   jobs has none). The settings are set with ALTER FUNCTION, so they hold whatever body
--   claim_jobs has (a later CREATE OR REPLACE must repeat them: tests/sql/test_queue_scale.py
--   checks the plan).
--
-- * `complete_jobs`, `heartbeat_jobs`, `release_jobs` select `id = any(ids) and status =
--   'running'` (`complete_job`, `fail_job`, `snooze_job` the same for one id).
--   jobs_running_lease_idx is partial on
--   `status = 'running'`, so the planner read all of it with a bitmap scan (bitmap scans never
--   mark dead index entries, so every job completed since the last vacuum stayed in the scan):
--   O(jobs processed since vacuum) per call. The index now also requires
--   `locked_until is not null`, which `reap_expired_leases` (`locked_until < now()`) implies and
--   the by-id writes do not: they look rows up by primary key.

-- The kind check: one helper, used by the triggers and by both enqueue functions. --------------
create or replace function public.job_kind_attempts(kind text)
returns integer
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  attempts integer;
begin
  select k.default_max_attempts into attempts from public.job_kinds k
  where k.kind = job_kind_attempts.kind;
  if not found then
    raise exception 'unknown job kind "%"', job_kind_attempts.kind
      using errcode = '22023',
            hint = 'known kinds: ' || (select string_agg(k.kind, ', ' order by k.kind) from public.job_kinds k);
  end if;
  return attempts;
end
$$;

create or replace function public.jobs_check_kind()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.job_kind_attempts(new.kind);
  return new;
end
$$;

create or replace function public.jobs_check_inserted_kinds()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  bad text;
begin
  -- A statement inserts few distinct kinds (usually one): look each up once.
  select n.kind into bad from (select distinct i.kind from inserted_jobs i) n
  where not exists (select 1 from public.job_kinds k where k.kind = n.kind)
  limit 1;
  if found then
    perform public.job_kind_attempts(bad);
  end if;
  return null;
end
$$;

drop trigger if exists jobs_check_kind on public.jobs;
create trigger jobs_check_kind
  before update of kind on public.jobs
  for each row execute function public.jobs_check_kind();
drop trigger if exists jobs_check_inserted_kinds on public.jobs;
create trigger jobs_check_inserted_kinds
  after insert on public.jobs
  referencing new table as inserted_jobs
  for each statement execute function public.jobs_check_inserted_kinds();

-- enqueue_job: as before (checks, defaults, dedupe), with the kind checked before the insert. ---
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
  attempts_max integer;
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
  attempts_max := public.job_kind_attempts(enqueue_job.kind);  -- refuses an unknown kind
  attempts_max := coalesce(enqueue_job.max_attempts, attempts_max);
  insert into public.jobs as j (kind, payload, run_at, priority, dedupe_key, max_attempts)
  values (
    enqueue_job.kind,
    enqueue_job.payload,
    coalesce(enqueue_job.run_at, now()),
    coalesce(enqueue_job.priority, 0),
    enqueue_job.dedupe_key,
    attempts_max
  )
  on conflict (dedupe_key) where dedupe_key is not null do nothing
  returning j.id into new_id;

  if new_id is null then
    select j.id into new_id from public.jobs j where j.dedupe_key = enqueue_job.dedupe_key;
  end if;
  return new_id;
end
$$;

-- enqueue_jobs: one job per payload, in one statement; ids returned in the order of payloads. ----
create or replace function public.enqueue_jobs(
  kind text,
  payloads jsonb[],
  run_at timestamptz default null,
  priority integer default 0,
  dedupe_keys text[] default null,
  max_attempts integer default null
) returns setof bigint
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  n integer := coalesce(cardinality(enqueue_jobs.payloads), 0);
  id_seq regclass := pg_catalog.pg_get_serial_sequence('public.jobs', 'id')::regclass;
  bad record;
  attempts_max integer;
  ids bigint[];
begin
  if enqueue_jobs.payloads is null then
    raise exception 'payloads must be an array of JSON objects, got null' using errcode = '22023';
  end if;
  if pg_catalog.array_ndims(enqueue_jobs.payloads) > 1 then
    raise exception 'payloads must be a one-dimensional array' using errcode = '22023';
  end if;
  if enqueue_jobs.dedupe_keys is not null
     and (cardinality(enqueue_jobs.dedupe_keys) <> n or pg_catalog.array_ndims(enqueue_jobs.dedupe_keys) > 1) then
    raise exception 'dedupe_keys must hold one key (or null) per payload: % payloads, % keys',
      n, cardinality(enqueue_jobs.dedupe_keys) using errcode = '22023';
  end if;
  -- The checks enqueue_job makes, for every payload, naming the first bad one.
  select u.ord, u.p into bad
  from unnest(enqueue_jobs.payloads) with ordinality as u(p, ord)
  where u.p is null or jsonb_typeof(u.p) <> 'object'
     or (u.p ? 'scheduled_tweet_id'
         and coalesce(u.p ->> 'scheduled_tweet_id', '') !~ '^[0-9]{1,18}$')
  order by u.ord
  limit 1;
  if found then
    if bad.p is null or jsonb_typeof(bad.p) <> 'object' then
      raise exception 'job payload % of % must be a JSON object, got %',
        bad.ord, n, coalesce(jsonb_typeof(bad.p), 'null') using errcode = '22023';
    end if;
    raise exception 'job payload % of %: scheduled_tweet_id must be a scheduled_tweets id (a positive integer), got %',
      bad.ord, n, left((bad.p -> 'scheduled_tweet_id')::text, 100) using errcode = '22023';
  end if;
  if n = 0 then
    return;
  end if;

  attempts_max := public.job_kind_attempts(enqueue_jobs.kind);  -- refuses an unknown kind
  attempts_max := coalesce(enqueue_jobs.max_attempts, attempts_max);
  -- Ids are drawn first, one per payload, so every payload knows its row without relying on the
  -- order in which an INSERT evaluates defaults.
  select array_agg(nextval(id_seq) order by g) into ids from generate_series(1, n) g;

  if enqueue_jobs.dedupe_keys is null then
    -- No keys, no conflicts: a plain INSERT (ON CONFLICT costs a speculative insertion per row).
    insert into public.jobs (id, kind, payload, run_at, priority, max_attempts)
    overriding system value
    select ids[u.ord], enqueue_jobs.kind, u.p, coalesce(enqueue_jobs.run_at, now()),
           coalesce(enqueue_jobs.priority, 0), attempts_max
    from unnest(enqueue_jobs.payloads) with ordinality as u(p, ord);
    return query select unnest(ids);  -- unnest reads the array in order
    return;
  end if;

  insert into public.jobs as j (id, kind, payload, run_at, priority, dedupe_key, max_attempts)
  overriding system value
  select ids[u.ord], enqueue_jobs.kind, u.p, coalesce(enqueue_jobs.run_at, now()),
         coalesce(enqueue_jobs.priority, 0), enqueue_jobs.dedupe_keys[u.ord], attempts_max
  from unnest(enqueue_jobs.payloads) with ordinality as u(p, ord)
  order by u.ord  -- the first payload with a key wins that key
  on conflict (dedupe_key) where dedupe_key is not null do nothing;
  -- A payload whose key was taken (by an existing job, or earlier in this batch) gets that job's
  -- id, as enqueue_job does. A new statement, so jobs committed meanwhile are seen too.
  return query
  select coalesce(mine.id, held.id)
  from unnest(ids, enqueue_jobs.dedupe_keys) with ordinality as r(id, key, ord)
  left join public.jobs mine on mine.id = r.id
  left join public.jobs held on r.key is not null and held.dedupe_key = r.key
  order by r.ord;
end
$$;

do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('enqueue_jobs', 'job_kind_attempts', 'jobs_check_inserted_kinds')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;

-- claim_jobs: the O(batch) plan is the only one left. -------------------------------------------
alter function public.claim_jobs(text, text[], integer, interval) set enable_sort = off;
alter function public.claim_jobs(text, text[], integer, interval) set enable_hashjoin = off;

-- jobs_running_lease_idx: for reaping expired leases only. -------------------------------------
do $$
begin
  if not exists (
    select 1 from pg_catalog.pg_indexes
    where schemaname = 'public' and indexname = 'jobs_running_lease_idx'
      and indexdef like '%locked_until IS NOT NULL%'
  ) then
    drop index if exists public.jobs_running_lease_idx;
    create index jobs_running_lease_idx on public.jobs (locked_until)
      where status = 'running' and locked_until is not null;
  end if;
end
$$;
