-- Periodic jobs do not pile up: at most one waiting job per kind.
--
-- pg_cron enqueues poll_mentions every minute (and collect_stats, reconcile_usage hourly) with a
-- dedupe key per window. A job that waits (a rate limit, a quota, X's credits) used to be joined
-- by a new one every window: sixty waiting polls after an hour, all released at once. Now the
-- schedules call enqueue_periodic_job, which adds nothing while a job of the kind with the
-- periodic (empty) payload is still queued or running: that one job covers the window.

create or replace function public.enqueue_periodic_job(
  kind text,
  window_key text,
  priority integer default 0,
  max_attempts integer default null
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  existing bigint;
begin
  -- one caller at a time per kind, so two schedules firing together still make one job
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('chirpbase-periodic:' || enqueue_periodic_job.kind));
  select j.id into existing
  from public.jobs j
  where j.kind = enqueue_periodic_job.kind
    and j.status in ('queued', 'running')
    and j.payload = '{}'::jsonb
  order by j.id
  limit 1;
  if existing is not null then
    return existing;
  end if;
  return public.enqueue_job(enqueue_periodic_job.kind, '{}'::jsonb, now(), enqueue_periodic_job.priority,
                            enqueue_periodic_job.kind || ':' || enqueue_periodic_job.window_key,
                            enqueue_periodic_job.max_attempts);
end
$$;

-- sync_schedules: as before, with periodic jobs through enqueue_periodic_job, and the daily prune
-- also forgetting the resources X billed two days ago (x_billed_resources).
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
  -- X's own usage count (what it bills) is checked hourly against chirpbase's.
  perform cron.schedule('chirpbase-reconcile-usage', '30 * * * *',
    $cmd$select public.enqueue_periodic_job('reconcile_usage',
      to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24'), 0, 3)$cmd$);
  perform cron.schedule('chirpbase-prune', '17 3 * * *',
    format($cmd$select public.prune_finished_jobs(interval '%s days');
      delete from cron.job_run_details where end_time < now() - interval '%s days';
      delete from public.x_billed_resources where day < (now() at time zone 'UTC')::date - 1$cmd$,
      retention, retention));
  return n + 5;
end
$$;

select public.sync_schedules();

do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('enqueue_periodic_job', 'sync_schedules')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
