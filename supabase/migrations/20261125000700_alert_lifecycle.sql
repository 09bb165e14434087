-- Alert lifecycle: conditions that clear resolve their alerts, repeated failures are counted, and
-- the optional webhook delivery keeps its state here (so replicas share one rate limit).
--
-- The worker calls evaluate_alerts() every few seconds (any replica; one at a time) and records
-- what only it can see (doorbell down, a database outage it lived through). docs/alerts.md lists
-- every alert kind with its raise and resolve rule.

-- Failed attempts: one row per attempt that ended in failure (fail_job, an expired lease). -----
create table if not exists public.job_failures (
  id bigint generated always as identity primary key,
  job_id bigint not null,
  kind text not null,
  attempt integer not null,
  error text,
  failed_at timestamptz not null default now()
);
comment on table public.job_failures is
  'One row per failed job attempt (written by trigger; pruned after a day). Feeds the repeated-failures alert.';
create index if not exists job_failures_kind_at_idx on public.job_failures (kind, failed_at desc);
create index if not exists job_failures_at_idx on public.job_failures (failed_at);

create or replace function public.jobs_record_failure()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.job_failures (job_id, kind, attempt, error)
  values (new.id, new.kind, new.attempts, left(new.last_error, 500));
  return null;
end
$$;

-- running -> queued/dead with the attempt kept is a failed attempt (fail_job, reap_expired_leases);
-- snooze_job and release_jobs give the attempt back, so they are not counted.
drop trigger if exists jobs_record_failure on public.jobs;
create trigger jobs_record_failure
  after update of status on public.jobs
  for each row
  when (old.status = 'running' and new.status in ('queued', 'dead', 'failed')
        and new.attempts = old.attempts)
  execute function public.jobs_record_failure();

-- Dead jobs by kind (tiny: only dead rows), for the job_dead resolution rule.
create index if not exists jobs_dead_kind_idx on public.jobs (kind, finished_at) where status = 'dead';

-- Alerts: resolution delivered to the webhook, and lookups by key over history. ----------------
alter table public.alerts add column if not exists resolved_notified_at timestamptz;
comment on column public.alerts.notified_at is
  'When the alert (raised) was delivered to configs.alerts.webhook_url; null while not delivered.';
comment on column public.alerts.resolved_notified_at is
  'When its resolution was delivered to the webhook.';
create index if not exists alerts_key_resolved_idx on public.alerts (dedupe_key, resolved_at desc);

-- Webhook delivery state: one row, so every replica honours the same rate limit and backoff. -----
create table if not exists public.alert_delivery (
  id integer primary key default 1 check (id = 1),
  last_sent_at timestamptz,
  last_attempt_at timestamptz,
  failures integer not null default 0,
  next_attempt_at timestamptz,
  last_error text,
  locked_by text,
  locked_until timestamptz,
  messages_sent bigint not null default 0
);
comment on table public.alert_delivery is
  'State of the alert webhook: last delivery (rate limit), consecutive failures and backoff, lease.';
insert into public.alert_delivery (id) values (1) on conflict (id) do nothing;

do $$
declare
  t text;
  seq text;
begin
  foreach t in array array['job_failures', 'alert_delivery']
  loop
    execute format('alter table public.%I enable row level security', t);
    execute format('revoke all on table public.%I from anon, authenticated', t);
    execute format('grant all on table public.%I to service_role', t);
    seq := (select pg_catalog.pg_get_serial_sequence('public.' || t, a.attname)
            from pg_catalog.pg_attribute a
            where a.attrelid = ('public.' || t)::regclass and a.attidentity <> '' limit 1);
    if seq is not null then
      execute format('revoke all on sequence %s from anon, authenticated', seq);
    end if;
  end loop;
end
$$;

-- close_alert: resolve the open alert for a key, recording why (details.resolution). ----------
create or replace function public.close_alert(dedupe_key text, reason text)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with r as (
    update public.alerts a
    set resolved_at = now(),
        details = a.details || jsonb_build_object('resolution', close_alert.reason)
    where a.dedupe_key = close_alert.dedupe_key and a.resolved_at is null
    returning 1
  )
  select exists (select 1 from r);
$$;

-- evaluate_alerts: raise what the database can see and resolve what has cleared. -------------
-- Returns one row per alert raised or resolved by this call. Replicas call it concurrently; one
-- evaluates, the others return nothing (advisory lock).
create or replace function public.evaluate_alerts(
  failure_threshold integer default 5,
  failure_window interval default interval '15 minutes',
  stale_after interval default interval '5 minutes'
) returns table (action text, dedupe_key text, message text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  m date := public.current_month();
  a record;
  q record;
  f record;
  k text;
  reason text;
  headroom numeric;
  last_at timestamptz;
  alert_month text;
begin
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('chirpbase-evaluate-alerts')) then
    return;
  end if;

  -- Quotas: threshold and cap, for the current month against the current caps. ----------------
  for q in
    select c.resource, c.cap, c.alert_threshold, coalesce(u.used, 0) as used
    from public.quota_caps() c
    left join public.quota_usage u on u.resource = c.resource and u.month = m
  loop
    -- the cap counts as cleared once at least one more unit fits (1% of the budget for money)
    headroom := case when q.resource in ('posts', 'reads') then 1 else coalesce(q.cap, 0) * 0.01 end;

    -- threshold
    k := 'quota_threshold:' || q.resource;
    if q.cap is not null and q.cap > 0 and q.used >= q.alert_threshold * q.cap then
      if not exists (select 1 from public.alerts x where x.dedupe_key = k and x.resolved_at is null) then
        perform public.raise_alert('warning', 'quota_threshold', k,
          format('%s at %s%% of the monthly cap (%s of %s)', q.resource,
                 round(100 * q.used / q.cap), q.used, q.cap),
          jsonb_build_object('resource', q.resource, 'used', q.used, 'cap', q.cap, 'month', m));
        action := 'raised'; dedupe_key := k;
        message := format('%s at %s%% of the monthly cap', q.resource, round(100 * q.used / q.cap));
        return next;
      end if;
    else
      select x.details ->> 'month' into alert_month
      from public.alerts x where x.dedupe_key = k and x.resolved_at is null;
      if found then
        reason := case
          when q.cap is null then format('no monthly %s cap any more', q.resource)
          when alert_month is not null and alert_month < m::text
            then format('new month: %s of %s used', q.used, q.cap)
          else format('back under %s%% of the cap: %s of %s', round(100 * q.alert_threshold),
                      q.used, q.cap)
        end;
        if public.close_alert(k, reason) then
          action := 'resolved'; dedupe_key := k; message := reason;
          return next;
        end if;
      end if;
    end if;

    -- cap reached
    k := 'quota_cap:' || q.resource;
    if q.cap is not null and q.cap > 0 and q.used >= q.cap then
      if not exists (select 1 from public.alerts x where x.dedupe_key = k and x.resolved_at is null) then
        perform public.raise_alert('critical', 'quota_cap_reached', k,
          format('monthly %s cap of %s reached; work needing it waits until next month or a higher cap',
                 q.resource, q.cap),
          jsonb_build_object('resource', q.resource, 'used', q.used, 'cap', q.cap, 'month', m));
        action := 'raised'; dedupe_key := k;
        message := format('monthly %s cap of %s reached', q.resource, q.cap);
        return next;
      end if;
    elsif q.cap is null or q.used + headroom <= q.cap then
      select x.details ->> 'month' into alert_month
      from public.alerts x where x.dedupe_key = k and x.resolved_at is null;
      if found then
        reason := case
          when q.cap is null then format('no monthly %s cap any more', q.resource)
          when alert_month is not null and alert_month < m::text
            then format('new month: %s of %s used', q.used, q.cap)
          else format('room under the cap again: %s of %s used', q.used, q.cap)
        end;
        if public.close_alert(k, reason) then
          action := 'resolved'; dedupe_key := k; message := reason;
          return next;
        end if;
      end if;
    end if;
  end loop;

  -- Dead jobs: resolved when a later job of the kind succeeded, or none is dead any more. -------
  for a in
    select x.dedupe_key, coalesce(x.details ->> 'kind', pg_catalog.split_part(x.dedupe_key, ':', 2)) as kind
    from public.alerts x where x.kind = 'job_dead' and x.resolved_at is null
  loop
    select max(coalesce(j.finished_at, j.updated_at)) into last_at
    from public.jobs j where j.kind = a.kind and j.status = 'dead';
    if last_at is null then
      reason := format('no dead %s job left (retried or pruned)', a.kind);
    elsif exists (select 1 from public.jobs s
                  where s.finished_at > last_at and s.kind = a.kind and s.status = 'succeeded') then
      reason := format('a later %s job succeeded', a.kind);
    else
      continue;
    end if;
    if public.close_alert(a.dedupe_key, reason) then
      action := 'resolved'; dedupe_key := a.dedupe_key; message := reason;
      return next;
    end if;
  end loop;

  -- Repeated failures: resolved when a job of the kind succeeded after its latest failure. -----
  for a in
    select x.dedupe_key, coalesce(x.details ->> 'kind', pg_catalog.split_part(x.dedupe_key, ':', 2)) as kind
    from public.alerts x where x.kind = 'job_failures' and x.resolved_at is null
  loop
    select max(jf.failed_at) into last_at from public.job_failures jf where jf.kind = a.kind;
    if last_at is null then
      reason := format('no %s failure in the last day', a.kind);
    elsif exists (select 1 from public.jobs s
                  where s.finished_at > last_at and s.kind = a.kind and s.status = 'succeeded') then
      reason := format('%s jobs succeed again', a.kind);
    else
      continue;
    end if;
    if public.close_alert(a.dedupe_key, reason) then
      action := 'resolved'; dedupe_key := a.dedupe_key; message := reason;
      return next;
    end if;
  end loop;

  -- ... and raised when a kind failed failure_threshold times within failure_window (counting
  -- only failures after the previous such alert was resolved, so a recovery needs fresh ones).
  for f in
    select jf.kind, count(*) as n,
           (array_agg(jf.error order by jf.failed_at desc))[1] as last_error
    from public.job_failures jf
    where jf.failed_at > now() - failure_window
      and jf.failed_at > coalesce(
        (select max(x.resolved_at) from public.alerts x where x.dedupe_key = 'job_failures:' || jf.kind),
        '-infinity')
    group by jf.kind
    having count(*) >= greatest(failure_threshold, 1)
  loop
    k := 'job_failures:' || f.kind;
    if not exists (select 1 from public.alerts x where x.dedupe_key = k and x.resolved_at is null) then
      perform public.raise_alert('warning', 'job_failures', k,
        format('%s failed %s times in the last %s (latest: %s)', f.kind, f.n, failure_window,
               coalesce(left(f.last_error, 300), 'no error recorded')),
        jsonb_build_object('kind', f.kind, 'failures', f.n,
                           'window_s', extract(epoch from failure_window)::integer));
      action := 'raised'; dedupe_key := k;
      message := format('%s failed %s times in the last %s', f.kind, f.n, failure_window);
      return next;
    end if;
  end loop;

  -- X and OpenAI refusals raised by the handlers: resolved by a later success. -----------------
  for a in
    select x.dedupe_key, x.kind, x.last_seen_at from public.alerts x
    where x.kind in ('x_auth', 'x_usage_capped', 'openai_auth', 'openai_quota_exhausted')
      and x.resolved_at is null
  loop
    reason := null;
    if a.kind in ('x_auth', 'x_usage_capped') then
      -- handlers record api_usage only after X answered a call successfully
      if exists (select 1 from public.api_usage u
                 where u.updated_at > a.last_seen_at and u.endpoint not like 'openai:%') then
        reason := 'X accepted a call again';
      end if;
    elsif exists (select 1 from public.jobs s
                  where s.finished_at > a.last_seen_at and s.kind = 'generate_tweet'
                    and s.status = 'succeeded') then
      reason := 'a generate_tweet job succeeded again';
    end if;
    if reason is not null and public.close_alert(a.dedupe_key, reason) then
      action := 'resolved'; dedupe_key := a.dedupe_key; message := reason;
      return next;
    end if;
  end loop;

  -- Worker-scoped alerts (doorbell down) whose worker stopped confirming them. --------------------
  for a in
    select x.dedupe_key from public.alerts x
    where x.kind = 'doorbell_down' and x.resolved_at is null
      and x.last_seen_at < now() - stale_after
  loop
    reason := 'the worker that raised it stopped reporting (stopped or restarted)';
    if public.close_alert(a.dedupe_key, reason) then
      action := 'resolved'; dedupe_key := a.dedupe_key; message := reason;
      return next;
    end if;
  end loop;

  delete from public.job_failures jf
  where jf.failed_at < now() - greatest(failure_window, interval '1 day');
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
      and p.proname in ('jobs_record_failure', 'close_alert', 'evaluate_alerts')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
