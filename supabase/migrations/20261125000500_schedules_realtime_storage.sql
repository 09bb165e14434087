-- Schedules (pg_cron), Realtime publication, the image bucket, default configs, dashboard views,
-- and function privileges.

-- Default configs (only when absent: an operator's values are never overwritten). --------------
insert into public.configs (key, value) values
  ('persona', '{
     "name": "chirpbase",
     "description": "A friendly account that shares short, useful notes about building software with Postgres and Python.",
     "tone": "warm, concise, curious; no hype",
     "language": "en",
     "topics": ["Postgres tips", "Python tips", "shipping small tools", "observability"],
     "examples": []
   }'::jsonb),
  ('schedule', '{
     "enabled": true,
     "generate_cron": "0 9,13,18 * * *",
     "with_image": false,
     "poll_mentions_cron": "* * * * *",
     "collect_stats_cron": "0 * * * *",
     "job_retention_days": 7
   }'::jsonb),
  ('generation', '{
     "text_model": "gpt-5.4-mini",
     "image_model": "gpt-image-1.5",
     "moderation_model": "omni-moderation-latest",
     "image": false,
     "image_size": "1024x1024",
     "style": "clean illustration, soft colours, no text",
     "hashtags": [],
     "banned_words": [],
     "max_attempts": 3,
     "similarity_threshold": 0.6,
     "recent_window": 20,
     "require_approval": false,
     "alt_text": true
   }'::jsonb),
  ('engagement', '{
     "auto_like": true,
     "like_mentions": true,
     "daily_like_cap": 200,
     "skip_authors": [],
     "blocked_keywords": []
   }'::jsonb),
  ('quotas', '{
     "plan": "pay_per_use",
     "monthly_post_cap": null,
     "monthly_read_cap": null,
     "alert_threshold": 0.8,
     "cost_per_post_usd": 0.01,
     "cost_per_read_usd": 0.005,
     "openai_monthly_budget_usd": 20
   }'::jsonb),
  ('alerts', '{"webhook_url": null, "min_interval_seconds": 300}'::jsonb)
on conflict (key) do nothing;

-- pg_cron schedules -----------------------------------------------------------------------------
-- pg_cron runs in one database (cron.database_name; `postgres` on Supabase) and in UTC. Where it
-- is absent (a scratch database) the schedules are skipped with a notice.
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
      $cmd$select public.enqueue_job('poll_mentions', '{}'::jsonb, now(), 5,
        'poll_mentions:' || to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS'), 3)$cmd$);
    field := 'collect_stats_cron';
    perform cron.schedule('chirpbase-collect-stats', coalesce(sched ->> 'collect_stats_cron', '0 * * * *'),
      $cmd$select public.enqueue_job('collect_stats', '{}'::jsonb, now(), 1,
        'collect_stats:' || to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI'), 3)$cmd$);
  exception when invalid_parameter_value then
    raise exception 'configs.schedule.% is not a schedule pg_cron accepts, got "%"', field, sched ->> field
      using errcode = '22023', detail = sqlerrm,
            hint = 'Five cron fields in UTC like "0 9 * * *"; "N seconds" needs pg_cron 1.5 or later.';
  end;
  perform cron.schedule('chirpbase-reap-leases', '* * * * *', 'select public.reap_expired_leases()');
  -- X's own usage count (what it bills) is checked hourly against chirpbase's.
  perform cron.schedule('chirpbase-reconcile-usage', '30 * * * *',
    $cmd$select public.enqueue_job('reconcile_usage', '{}'::jsonb, now(), 0,
      'reconcile_usage:' || to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24'), 3)$cmd$);
  perform cron.schedule('chirpbase-prune', '17 3 * * *',
    format($cmd$select public.prune_finished_jobs(interval '%s days');
      delete from cron.job_run_details where end_time < now() - interval '%s days'$cmd$,
      retention, retention));
  return n + 5;
end
$$;

create or replace function public.configs_after_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.key = 'schedule' then
    perform public.sync_schedules();
  end if;
  return null;
end
$$;

drop trigger if exists configs_after_change on public.configs;
create trigger configs_after_change
  after insert or update on public.configs
  for each row execute function public.configs_after_change();

select public.sync_schedules();

-- Realtime: the worker's doorbell listens to jobs and configs. ---------------------------------
do $$
begin
  if not exists (select 1 from pg_catalog.pg_publication_tables
                 where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'jobs') then
    alter publication supabase_realtime add table public.jobs;
  end if;
  if not exists (select 1 from pg_catalog.pg_publication_tables
                 where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'configs') then
    alter publication supabase_realtime add table public.configs;
  end if;
end
$$;

-- Storage: generated images (public so X and people can fetch them by URL). ---------------------
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('generated-images', 'generated-images', true, 5242880,
        array['image/png', 'image/jpeg', 'image/webp', 'image/gif'])
on conflict (id) do update set
  public = excluded.public,
  file_size_limit = excluded.file_size_limit,
  allowed_mime_types = excluded.allowed_mime_types;

-- Dashboard views (security_invoker: they honour the caller's RLS and privileges). ---------------
create or replace view public.queue_depth with (security_invoker = true) as
  select kind, status, count(*) as jobs, min(run_at) as oldest_run_at,
         max(now() - run_at) filter (where status = 'queued' and run_at <= now()) as max_lag
  from public.jobs
  group by kind, status;

create or replace view public.quota_use with (security_invoker = true) as
  select c.resource, public.current_month() as month, coalesce(u.used, 0) as used, c.cap,
         case when c.cap > 0 then round(100 * coalesce(u.used, 0) / c.cap, 1) end as percent,
         c.alert_threshold
  from public.quota_caps() c
  left join public.quota_usage u on u.resource = c.resource and u.month = public.current_month();

revoke all on public.queue_depth, public.quota_use from anon, authenticated;
grant select on public.queue_depth, public.quota_use to service_role;

-- Function privileges: only the owner and the service role may call chirpbase's functions. -------
do $$
declare
  f regprocedure;
begin
  for f in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in (
        'enqueue_job', 'claim_jobs', 'heartbeat_jobs', 'complete_job', 'complete_jobs', 'fail_job',
        'snooze_job', 'release_jobs', 'reap_expired_leases', 'cancel_job', 'retry_job', 'prune_finished_jobs',
        'retry_delay', 'jobs_check_kind', 'jobs_alert_on_dead', 'raise_alert', 'resolve_alert',
        'config_check_type', 'config_check_number', 'config_check_whole_number', 'config_check_cron',
        'validate_config',
        'configs_validate', 'config_value', 'quota_caps', 'current_month', 'consume_quota',
        'refund_quota', 'record_api_usage', 'tweet_weighted_length',
        'scheduled_tweets_before_insert', 'scheduled_tweets_before_update',
        'schedule_generated_tweet', 'replies_enqueue_like', 'sync_schedules', 'configs_after_change')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', f);
    execute format('grant execute on function %s to service_role', f);
  end loop;
end
$$;
