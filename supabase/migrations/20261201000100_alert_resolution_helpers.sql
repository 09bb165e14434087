-- Alert resolution in one place per shape: the repeated "close it when the condition cleared"
-- blocks of evaluate_alerts become two functions; evaluate_alerts is redefined to call them.
-- Raise and resolve rules are unchanged (docs/alerts.md).

-- close_quota_alert: resolve a quota alert that no longer holds, with the reason: the cap is
-- gone, a new month started since it was raised, or `otherwise` (the caller's wording). Returns
-- the reason when an open alert was closed, null when there was none.
create or replace function public.close_quota_alert(
  dedupe_key text, resource text, cap numeric, used numeric, month date, otherwise text
) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  alert_month text;
  reason text;
begin
  select x.details ->> 'month' into alert_month
  from public.alerts x where x.dedupe_key = close_quota_alert.dedupe_key and x.resolved_at is null;
  if not found then
    return null;
  end if;
  reason := case
    when close_quota_alert.cap is null then format('no monthly %s cap any more', close_quota_alert.resource)
    when alert_month is not null and alert_month < close_quota_alert.month::text
      then format('new month: %s of %s used', close_quota_alert.used, close_quota_alert.cap)
    else close_quota_alert.otherwise
  end;
  if public.close_alert(close_quota_alert.dedupe_key, reason) then
    return reason;
  end if;
  return null;
end
$$;

-- resolve_job_kind_alerts: resolve open `job_dead` or `job_failures` alerts whose kind
-- recovered: nothing bad is left (no dead job of the kind / no failure in the last day), or a
-- job of the kind succeeded after the latest bad event. One row per alert resolved.
create or replace function public.resolve_job_kind_alerts(alert_kind text)
returns table (dedupe_key text, message text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  a record;
  last_at timestamptz;
  reason text;
begin
  if resolve_job_kind_alerts.alert_kind not in ('job_dead', 'job_failures') then
    raise exception 'resolve_job_kind_alerts: unknown alert kind %', resolve_job_kind_alerts.alert_kind
      using errcode = '22023';
  end if;
  for a in
    select x.dedupe_key,
           coalesce(x.details ->> 'kind', pg_catalog.split_part(x.dedupe_key, ':', 2)) as kind
    from public.alerts x
    where x.kind = resolve_job_kind_alerts.alert_kind and x.resolved_at is null
  loop
    if resolve_job_kind_alerts.alert_kind = 'job_dead' then
      select max(coalesce(j.finished_at, j.updated_at)) into last_at
      from public.jobs j where j.kind = a.kind and j.status = 'dead';
    else
      select max(jf.failed_at) into last_at from public.job_failures jf where jf.kind = a.kind;
    end if;
    if last_at is null then
      reason := case resolve_job_kind_alerts.alert_kind
        when 'job_dead' then format('no dead %s job left (retried or pruned)', a.kind)
        else format('no %s failure in the last day', a.kind) end;
    elsif exists (select 1 from public.jobs s
                  where s.finished_at > last_at and s.kind = a.kind and s.status = 'succeeded') then
      reason := case resolve_job_kind_alerts.alert_kind
        when 'job_dead' then format('a later %s job succeeded', a.kind)
        else format('%s jobs succeed again', a.kind) end;
    else
      continue;
    end if;
    if public.close_alert(a.dedupe_key, reason) then
      dedupe_key := a.dedupe_key; message := reason;
      return next;
    end if;
  end loop;
end
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
      reason := public.close_quota_alert(k, q.resource, q.cap, q.used, m,
        format('back under %s%% of the cap: %s of %s', round(100 * q.alert_threshold), q.used, q.cap));
      if reason is not null then
        action := 'resolved'; dedupe_key := k; message := reason;
        return next;
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
      reason := public.close_quota_alert(k, q.resource, q.cap, q.used, m,
        format('room under the cap again: %s of %s used', q.used, q.cap));
      if reason is not null then
        action := 'resolved'; dedupe_key := k; message := reason;
        return next;
      end if;
    end if;
  end loop;

  -- Dead jobs and repeated failures: resolved once the kind recovered. -------------------------
  return query select 'resolved'::text, r.dedupe_key, r.message
               from public.resolve_job_kind_alerts('job_dead') r;
  return query select 'resolved'::text, r.dedupe_key, r.message
               from public.resolve_job_kind_alerts('job_failures') r;

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
      and p.proname in ('close_quota_alert', 'resolve_job_kind_alerts', 'evaluate_alerts')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
