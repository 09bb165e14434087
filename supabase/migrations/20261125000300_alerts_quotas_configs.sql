-- Alerts, quota accounting and configuration validation.

-- Alerts: one open alert per dedupe_key; raising again bumps it, resolving closes it. -----------
create or replace function public.raise_alert(
  level text,
  kind text,
  dedupe_key text,
  message text,
  details jsonb default '{}'::jsonb
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  alert_id bigint;
begin
  update public.alerts a
  set occurrences = a.occurrences + 1, last_seen_at = now(), message = raise_alert.message,
      level = raise_alert.level, details = coalesce(raise_alert.details, '{}'::jsonb)
  where a.dedupe_key = raise_alert.dedupe_key and a.resolved_at is null
  returning a.id into alert_id;
  if alert_id is null then
    begin
      insert into public.alerts (level, kind, dedupe_key, message, details)
      values (raise_alert.level, raise_alert.kind, raise_alert.dedupe_key, raise_alert.message,
              coalesce(raise_alert.details, '{}'::jsonb))
      returning id into alert_id;
    exception when unique_violation then
      -- A concurrent raise won the race; fold into its row.
      update public.alerts a
      set occurrences = a.occurrences + 1, last_seen_at = now()
      where a.dedupe_key = raise_alert.dedupe_key and a.resolved_at is null
      returning a.id into alert_id;
    end;
  end if;
  return alert_id;
end
$$;

create or replace function public.resolve_alert(dedupe_key text)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with r as (
    update public.alerts a set resolved_at = now()
    where a.dedupe_key = resolve_alert.dedupe_key and a.resolved_at is null
    returning 1
  )
  select exists (select 1 from r);
$$;

drop trigger if exists jobs_alert_on_dead on public.jobs;
create trigger jobs_alert_on_dead
  after update of status on public.jobs
  for each row when (new.status = 'dead')
  execute function public.jobs_alert_on_dead();

-- Configuration validation (cheap shape checks; the worker validates fully with pydantic). ------
create or replace function public.config_check_type(
  cfg_key text, value jsonb, field text, expected text, nullable boolean default false
) returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  actual text := jsonb_typeof(value -> field);
begin
  if actual is null then
    return;  -- absent: the default applies
  end if;
  if actual = 'null' and nullable then
    return;
  end if;
  if actual <> expected then
    raise exception 'configs.%.% must be a %, got %', cfg_key, field, expected, actual
      using errcode = '22023';
  end if;
end
$$;

create or replace function public.config_check_number(
  cfg_key text, value jsonb, field text, lo numeric, hi numeric, nullable boolean default false
) returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  n numeric;
begin
  perform public.config_check_type(cfg_key, value, field, 'number', nullable);
  if jsonb_typeof(value -> field) = 'number' then
    n := (value ->> field)::numeric;
    if n < lo or n > hi then
      raise exception 'configs.%.% must be between % and %, got %', cfg_key, field, lo, hi, n
        using errcode = '22023';
    end if;
  end if;
end
$$;

-- Integer settings: the worker's models take 7 or 7.0 but not 7.5, and SQL casts them to integer.
create or replace function public.config_check_whole_number(
  cfg_key text, value jsonb, field text, lo numeric, hi numeric, nullable boolean default false
) returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  n numeric;
begin
  perform public.config_check_number(cfg_key, value, field, lo, hi, nullable);
  if jsonb_typeof(value -> field) = 'number' then
    n := (value ->> field)::numeric;
    if n <> trunc(n) then
      raise exception 'configs.%.% must be a whole number, got %', cfg_key, field, n
        using errcode = '22023';
    end if;
  end if;
end
$$;

create or replace function public.config_check_cron(cfg_key text, value jsonb, field text)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  expr text := value ->> field;
begin
  perform public.config_check_type(cfg_key, value, field, 'string');
  if expr is not null
     and expr !~ '^\s*(\S+\s+){4}\S+\s*$'
     and expr !~ '^\s*\d+\s+seconds\s*$' then
    raise exception 'configs.%.% must be a cron expression with 5 fields (UTC) like "0 9 * * *", got "%"',
      cfg_key, field, expr using errcode = '22023';
  end if;
end
$$;

create or replace function public.validate_config(key text, value jsonb)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  k text := validate_config.key;
  v jsonb := validate_config.value;
begin
  if k not in ('persona', 'schedule', 'generation', 'engagement', 'quotas', 'alerts') then
    return;  -- keys chirpbase does not know are stored as given
  end if;
  if v is null or jsonb_typeof(v) <> 'object' then
    raise exception 'configs.% must be a JSON object, got %', k, coalesce(jsonb_typeof(v), 'null')
      using errcode = '22023';
  end if;

  if k = 'persona' then
    perform public.config_check_type(k, v, 'name', 'string');
    perform public.config_check_type(k, v, 'description', 'string');
    perform public.config_check_type(k, v, 'tone', 'string');
    perform public.config_check_type(k, v, 'language', 'string');
    perform public.config_check_type(k, v, 'topics', 'array');
    perform public.config_check_type(k, v, 'examples', 'array');
  elsif k = 'schedule' then
    perform public.config_check_type(k, v, 'enabled', 'boolean');
    perform public.config_check_type(k, v, 'with_image', 'boolean');
    perform public.config_check_cron(k, v, 'generate_cron');
    perform public.config_check_cron(k, v, 'poll_mentions_cron');
    perform public.config_check_cron(k, v, 'collect_stats_cron');
    perform public.config_check_whole_number(k, v, 'job_retention_days', 1, 3650);
  elsif k = 'generation' then
    perform public.config_check_type(k, v, 'text_model', 'string');
    perform public.config_check_type(k, v, 'image_model', 'string');
    perform public.config_check_type(k, v, 'image', 'boolean');
    perform public.config_check_type(k, v, 'hashtags', 'array');
    perform public.config_check_type(k, v, 'banned_words', 'array');
    perform public.config_check_type(k, v, 'require_approval', 'boolean');
    perform public.config_check_whole_number(k, v, 'max_attempts', 1, 10);
    perform public.config_check_number(k, v, 'similarity_threshold', 0, 1);
    perform public.config_check_whole_number(k, v, 'recent_window', 0, 500);
  elsif k = 'engagement' then
    perform public.config_check_type(k, v, 'auto_like', 'boolean');
    perform public.config_check_type(k, v, 'like_mentions', 'boolean');
    perform public.config_check_whole_number(k, v, 'daily_like_cap', 0, 100000);
    perform public.config_check_type(k, v, 'skip_authors', 'array');
    perform public.config_check_type(k, v, 'blocked_keywords', 'array');
  elsif k = 'quotas' then
    if v ? 'plan' and (v ->> 'plan') not in ('free', 'basic', 'pro', 'pay_per_use') then
      raise exception 'configs.quotas.plan must be one of free, basic, pro, pay_per_use, got "%"', v ->> 'plan'
        using errcode = '22023';
    end if;
    perform public.config_check_whole_number(k, v, 'monthly_post_cap', 0, 1e9, true);
    perform public.config_check_whole_number(k, v, 'monthly_read_cap', 0, 1e9, true);
    perform public.config_check_number(k, v, 'alert_threshold', 0.01, 1);
    perform public.config_check_number(k, v, 'cost_per_post_usd', 0, 100);
    perform public.config_check_number(k, v, 'cost_per_read_usd', 0, 100);
    perform public.config_check_number(k, v, 'openai_monthly_budget_usd', 0, 1e6, true);
  elsif k = 'alerts' then
    perform public.config_check_type(k, v, 'webhook_url', 'string', true);
    perform public.config_check_whole_number(k, v, 'min_interval_seconds', 0, 86400);
    if coalesce(v ->> 'webhook_url', '') <> '' and (v ->> 'webhook_url') !~ '^https?://' then
      raise exception 'configs.alerts.webhook_url must be an http(s) URL' using errcode = '22023';
    end if;
  end if;
end
$$;

create or replace function public.configs_validate()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.validate_config(new.key, new.value);
  new.updated_at := now();
  return new;
end
$$;

drop trigger if exists configs_validate on public.configs;
create trigger configs_validate
  before insert or update on public.configs
  for each row execute function public.configs_validate();

-- config_value: read one config document (empty object when absent).
create or replace function public.config_value(key text)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce((select c.value from public.configs c where c.key = config_value.key), '{}'::jsonb);
$$;

-- Quotas ----------------------------------------------------------------------------------------
-- Plan presets (monthly caps, as X published them for its legacy plans; pay-per-use has no cap
-- unless the operator sets one). Numeric overrides in configs.quotas win; a null override (the
-- default config's) means "the plan's preset". Prices and caps are config.
create or replace function public.quota_caps()
returns table (resource text, cap numeric, alert_threshold numeric)
language sql
stable
security definer
set search_path = ''
as $$
  with q as (select public.config_value('quotas') as v),
  preset as (
    select
      case coalesce(q.v ->> 'plan', 'pay_per_use')
        when 'free' then 500 when 'basic' then 3000 when 'pro' then 300000 else null end as posts,
      case coalesce(q.v ->> 'plan', 'pay_per_use')
        when 'free' then 100 when 'basic' then 15000 when 'pro' then 1000000 else null end as reads
    from q
  )
  select 'posts'::text,
         case when jsonb_typeof(q.v -> 'monthly_post_cap') = 'number' then (q.v ->> 'monthly_post_cap')::numeric
              else preset.posts end,
         coalesce((q.v ->> 'alert_threshold')::numeric, 0.8)
  from q, preset
  union all
  select 'reads'::text,
         case when jsonb_typeof(q.v -> 'monthly_read_cap') = 'number' then (q.v ->> 'monthly_read_cap')::numeric
              else preset.reads end,
         coalesce((q.v ->> 'alert_threshold')::numeric, 0.8)
  from q, preset
  union all
  select 'openai_usd'::text,
         case when q.v ? 'openai_monthly_budget_usd' then (q.v ->> 'openai_monthly_budget_usd')::numeric
              else 20 end,
         coalesce((q.v ->> 'alert_threshold')::numeric, 0.8)
  from q;
$$;

create or replace function public.current_month()
returns date
language sql
stable
set search_path = ''
as $$
  select (date_trunc('month', now() at time zone 'UTC'))::date;
$$;

-- consume_quota: atomically take `amount` of a monthly resource if it fits under the cap.
-- Raises a warning alert at the threshold and a critical one when the cap is reached; returns
-- false (and takes nothing) when the amount does not fit, so the caller waits instead of calling X.
create or replace function public.consume_quota(resource text, amount numeric default 1)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  m date := public.current_month();
  c numeric;
  threshold numeric;
  new_used numeric;
begin
  -- A negative amount would lower the month's usage and lift the cap.
  if consume_quota.amount is null or consume_quota.amount < 0 then
    raise exception 'consume_quota: amount must be zero or more, got %', coalesce(consume_quota.amount::text, 'null')
      using errcode = '22023';
  end if;
  select qc.cap, qc.alert_threshold into c, threshold
  from public.quota_caps() qc where qc.resource = consume_quota.resource;
  if not found then
    raise exception 'unknown quota resource "%"', consume_quota.resource using errcode = '22023';
  end if;

  insert into public.quota_usage (month, resource) values (m, consume_quota.resource)
  on conflict (month, resource) do nothing;

  update public.quota_usage u
  set used = u.used + consume_quota.amount, updated_at = now()
  where u.month = m and u.resource = consume_quota.resource
    and (c is null or u.used + consume_quota.amount <= c)
  returning u.used into new_used;

  if new_used is null then
    perform public.raise_alert('critical', 'quota_cap_reached', 'quota_cap:' || consume_quota.resource,
      format('monthly %s cap of %s reached; work needing it waits until next month or a higher cap',
             consume_quota.resource, c),
      jsonb_build_object('resource', consume_quota.resource, 'cap', c, 'month', m));
    return false;
  end if;

  if c is not null and c > 0 and new_used >= threshold * c then
    perform public.raise_alert('warning', 'quota_threshold', 'quota_threshold:' || consume_quota.resource,
      format('%s at %s%% of the monthly cap (%s of %s)', consume_quota.resource,
             round(100 * new_used / c), new_used, c),
      jsonb_build_object('resource', consume_quota.resource, 'used', new_used, 'cap', c, 'month', m));
  end if;
  return true;
end
$$;

-- refund_quota: give back what was taken for a call that certainly did not reach X.
create or replace function public.refund_quota(resource text, amount numeric default 1)
returns void
language sql
security definer
set search_path = ''
as $$
  update public.quota_usage u
  set used = greatest(u.used - refund_quota.amount, 0), updated_at = now()
  where u.month = public.current_month() and u.resource = refund_quota.resource;
$$;

-- record_api_usage: per-endpoint counters and the last rate-limit headers seen.
create or replace function public.record_api_usage(
  endpoint text,
  calls integer default 1,
  posts integer default 0,
  reads integer default 0,
  rate_limit_limit integer default null,
  rate_limit_remaining integer default null,
  rate_limit_reset timestamptz default null,
  openai_input_tokens integer default 0,
  openai_output_tokens integer default 0,
  images integer default 0,
  estimated_cost_usd numeric default 0
) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.api_usage as u (month, endpoint, calls, posts, reads, rate_limit_limit,
    rate_limit_remaining, rate_limit_reset, openai_input_tokens, openai_output_tokens, images,
    estimated_cost_usd)
  values (public.current_month(), record_api_usage.endpoint, record_api_usage.calls,
    record_api_usage.posts, record_api_usage.reads, record_api_usage.rate_limit_limit,
    record_api_usage.rate_limit_remaining, record_api_usage.rate_limit_reset,
    record_api_usage.openai_input_tokens, record_api_usage.openai_output_tokens,
    record_api_usage.images, record_api_usage.estimated_cost_usd)
  on conflict (month, endpoint) do update set
    calls = u.calls + excluded.calls,
    posts = u.posts + excluded.posts,
    reads = u.reads + excluded.reads,
    rate_limit_limit = coalesce(excluded.rate_limit_limit, u.rate_limit_limit),
    rate_limit_remaining = coalesce(excluded.rate_limit_remaining, u.rate_limit_remaining),
    rate_limit_reset = coalesce(excluded.rate_limit_reset, u.rate_limit_reset),
    openai_input_tokens = u.openai_input_tokens + excluded.openai_input_tokens,
    openai_output_tokens = u.openai_output_tokens + excluded.openai_output_tokens,
    images = u.images + excluded.images,
    estimated_cost_usd = u.estimated_cost_usd + excluded.estimated_cost_usd,
    updated_at = now();
$$;
