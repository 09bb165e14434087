-- Prices per operation, X's billing rules, and a monthly budget in dollars.
--
-- * `configs.pricing` holds X's pay-per-use price per operation (under `x`) and OpenAI's (under
--   `openai`, overrides of the worker's per-model table), with `as_of` and `source`. X's prices
--   are https://docs.x.com/x-api/getting-started/pricing (Posts: Read $0.005, User: Read $0.010,
--   Owned Reads $0.001 for GET /2/users/{id}/tweets|mentions|... of the app owner, Post: Create
--   $0.015, with URL $0.200, summoned $0.010, Media Metadata $0.005, Activity events $0.005).
-- * Every X call is priced into `api_usage` by operation (`record_x_usage`). Reads are billed
--   once per resource per UTC day (the page's "Deduplication"): `x_billed_resources` remembers
--   which posts and users were billed today, so a second read of the same post costs nothing.
-- * The billing month follows X's `cap_reset_day` (GET /2/usage/tweets) once X reported it:
--   `current_month()` is the start of the current billing cycle, so every monthly counter
--   (quotas, api_usage) follows it. Until X reports a day, the cycle is the calendar month.
-- * `quotas.monthly_budget_usd` (X and OpenAI together) is a quota like the others (resource
--   `spend_usd`): reserved before a call, settled with the real price after, 80 % alert, and a
--   hard stop at 100 % where jobs wait and nothing is dropped.

-- Default pricing (only when absent: an operator's values are never overwritten). ---------------
insert into public.configs (key, value) values
  ('pricing', '{
     "as_of": "2026-04-20",
     "source": "https://docs.x.com/x-api/getting-started/pricing",
     "x": {
       "post": 0.015,
       "post_with_url": 0.20,
       "reply_summoned": 0.010,
       "media_metadata": 0.005,
       "post_read": 0.005,
       "owned_read": 0.001,
       "user_read": 0.010,
       "activity_event": 0.005
     },
     "openai": {
       "text": {"gpt-5.4-mini": {"input": 0.75, "cached_input": 0.075, "output": 4.50}},
       "image": {"gpt-image-1.5": {"text_input": 5.00, "image_input": 8.00, "output": 32.00,
                                   "per_image": 0.034}},
       "moderation_per_call": 0
     }
   }'::jsonb)
on conflict (key) do nothing;

-- Validation of the new keys and fields ---------------------------------------------------------
create or replace function public.validate_pricing_config(v jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
declare
  x jsonb := v -> 'x';
  op text;
begin
  perform public.config_check_type('pricing', v, 'as_of', 'string');
  perform public.config_check_type('pricing', v, 'source', 'string');
  perform public.config_check_type('pricing', v, 'x', 'object');
  perform public.config_check_type('pricing', v, 'openai', 'object');
  if v ? 'as_of' and (v ->> 'as_of') !~ '^\d{4}-\d{2}-\d{2}' then
    raise exception 'configs.pricing.as_of must be a date like "2026-04-20", got "%"', v ->> 'as_of'
      using errcode = '22023';
  end if;
  if jsonb_typeof(x) = 'object' then
    for op in select jsonb_object_keys(x) loop
      if op not in ('post', 'post_with_url', 'reply_summoned', 'media_metadata', 'post_read',
                    'owned_read', 'user_read', 'activity_event') then
        raise exception 'configs.pricing.x.% is not an X operation chirpbase prices (post, post_with_url, reply_summoned, media_metadata, post_read, owned_read, user_read, activity_event)', op
          using errcode = '22023';
      end if;
      perform public.config_check_number('pricing.x', x, op, 0, 100);
    end loop;
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
  if k not in ('persona', 'schedule', 'generation', 'engagement', 'quotas', 'alerts', 'pricing') then
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
    perform public.config_check_type(k, v, 'allow_urls', 'boolean');
    perform public.config_check_type(k, v, 'made_with_ai', 'boolean');
  elsif k = 'engagement' then
    perform public.config_check_type(k, v, 'auto_like', 'boolean');
    perform public.config_check_type(k, v, 'like_mentions', 'boolean');
    perform public.config_check_whole_number(k, v, 'daily_like_cap', 0, 100000);
    perform public.config_check_type(k, v, 'skip_authors', 'array');
    perform public.config_check_type(k, v, 'blocked_keywords', 'array');
  elsif k = 'quotas' then
    if v ? 'plan' and (v ->> 'plan') not in ('pay_per_use', 'basic', 'pro', 'enterprise', 'free') then
      raise exception 'configs.quotas.plan must be the X access tier: pay_per_use, basic, pro or enterprise, got "%"', v ->> 'plan'
        using errcode = '22023';
    end if;
    perform public.config_check_whole_number(k, v, 'monthly_post_cap', 0, 1e9, true);
    perform public.config_check_whole_number(k, v, 'monthly_read_cap', 0, 1e9, true);
    perform public.config_check_number(k, v, 'alert_threshold', 0.01, 1);
    perform public.config_check_number(k, v, 'cost_per_post_usd', 0, 100);
    perform public.config_check_number(k, v, 'cost_per_read_usd', 0, 100);
    perform public.config_check_number(k, v, 'openai_monthly_budget_usd', 0, 1e6, true);
    perform public.config_check_number(k, v, 'monthly_budget_usd', 0, 1e7, true);
  elsif k = 'alerts' then
    perform public.config_check_type(k, v, 'webhook_url', 'string', true);
    perform public.config_check_whole_number(k, v, 'min_interval_seconds', 0, 86400);
    if coalesce(v ->> 'webhook_url', '') <> '' and (v ->> 'webhook_url') !~ '^https?://' then
      raise exception 'configs.alerts.webhook_url must be an http(s) URL' using errcode = '22023';
    end if;
  elsif k = 'pricing' then
    perform public.validate_pricing_config(v);
  end if;
end
$$;

-- x_price: X's price of one unit of an operation (configs.pricing.x, X's published price when
-- the row leaves it out). Operations X does not price (media upload, usage, likes) cost 0.
create or replace function public.x_price(operation text)
returns numeric
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    case when jsonb_typeof(public.config_value('pricing') -> 'x' -> x_price.operation) = 'number'
         then (public.config_value('pricing') -> 'x' ->> x_price.operation)::numeric end,
    case x_price.operation
      when 'post' then 0.015 when 'post_with_url' then 0.20 when 'reply_summoned' then 0.010
      when 'media_metadata' then 0.005 when 'post_read' then 0.005 when 'owned_read' then 0.001
      when 'user_read' then 0.010 when 'activity_event' then 0.005
      else 0 end);
$$;

-- The billing cycle -----------------------------------------------------------------------------
alter table public.x_account add column if not exists cap_reset_day integer
  check (cap_reset_day between 1 and 31);
alter table public.x_account add column if not exists usage_checked_at timestamptz;
comment on column public.x_account.cap_reset_day is
  'Day of the month X resets the project''s usage (GET /2/usage/tweets cap_reset_day); null: the 1st.';

-- billing_cycle_start: the start (a UTC date) of the billing cycle that contains `moment`. The cycle
-- starts on cap_reset_day, or on the month's last day when the month is shorter.
create or replace function public.billing_cycle_start(moment timestamptz default now())
returns date
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  d integer := coalesce((select a.cap_reset_day from public.x_account a where a.id = 1), 1);
  today date := (billing_cycle_start.moment at time zone 'UTC')::date;
  m date := date_trunc('month', today)::date;
  reset_day date;
begin
  reset_day := m + (least(d, extract(day from (m + interval '1 month' - interval '1 day'))::integer) - 1);
  if today >= reset_day then
    return reset_day;
  end if;
  m := (m - interval '1 month')::date;
  return m + (least(d, extract(day from (m + interval '1 month' - interval '1 day'))::integer) - 1);
end
$$;

-- billing_cycle: the current cycle as timestamps (UTC midnights), for projections and waits.
create or replace function public.billing_cycle()
returns table (starts timestamptz, ends timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  with s as (select public.billing_cycle_start(now()) as d)
  select (s.d::timestamp at time zone 'UTC'),
         (public.billing_cycle_start(((s.d + interval '1 month' + interval '3 days')::timestamp at time zone 'UTC'))
            ::timestamp at time zone 'UTC')
  from s;
$$;

-- current_month: the start of the current billing cycle (every monthly counter is keyed by it).
create or replace function public.current_month()
returns date
language sql
stable
set search_path = ''
as $$
  select public.billing_cycle_start(now());
$$;

-- The dollar budget as a quota ------------------------------------------------------------------
alter table public.quota_usage drop constraint if exists quota_usage_resource_check;
alter table public.quota_usage add constraint quota_usage_resource_check
  check (resource in ('posts', 'reads', 'openai_usd', 'spend_usd'));

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
  from q
  union all
  -- X and OpenAI together; null (explicitly) means no budget.
  select 'spend_usd'::text,
         case when q.v ? 'monthly_budget_usd' then (q.v ->> 'monthly_budget_usd')::numeric else 50 end,
         coalesce((q.v ->> 'alert_threshold')::numeric, 0.8)
  from q;
$$;

-- consume_quota_upto: take as much of `amount` as fits under the cap, but at least `minimum`
-- (else nothing: the caller waits). Returns what was taken. Lets a read that can shrink (a
-- mention poll) fit a small cap instead of waiting for a month.
create or replace function public.consume_quota_upto(resource text, amount numeric, minimum numeric default 1)
returns numeric
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  m date := public.current_month();
  c numeric;
  left_over numeric;
  take numeric;
begin
  if consume_quota_upto.amount is null or consume_quota_upto.amount < 0
     or consume_quota_upto.minimum is null or consume_quota_upto.minimum < 0 then
    raise exception 'consume_quota_upto: amount and minimum must be zero or more' using errcode = '22023';
  end if;
  select qc.cap into c from public.quota_caps() qc where qc.resource = consume_quota_upto.resource;
  if not found then
    raise exception 'unknown quota resource "%"', consume_quota_upto.resource using errcode = '22023';
  end if;
  if consume_quota_upto.amount = 0 then
    return 0;
  end if;
  insert into public.quota_usage (month, resource) values (m, consume_quota_upto.resource)
  on conflict (month, resource) do nothing;
  select case when c is null then consume_quota_upto.amount else greatest(c - u.used, 0) end
  into left_over
  from public.quota_usage u where u.month = m and u.resource = consume_quota_upto.resource
  for update;
  take := least(consume_quota_upto.amount, left_over);
  if take <= 0 or take < consume_quota_upto.minimum then
    -- Not even the minimum fits: consume_quota, asked for more than is left, takes nothing and
    -- raises the cap alert.
    perform public.consume_quota(consume_quota_upto.resource,
                                 greatest(consume_quota_upto.minimum, least(consume_quota_upto.amount, 1)));
    return 0;
  end if;
  if not public.consume_quota(consume_quota_upto.resource, take) then
    return 0;
  end if;
  return take;
end
$$;

-- reserve_usd / settle_usd: money reserved before a priced call and settled with its real price.
-- OpenAI calls take their own budget (openai_usd) and the overall budget (spend_usd) together, or
-- neither; X calls take spend_usd.
create or replace function public.reserve_usd(resource text, amount numeric)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  if reserve_usd.resource not in ('openai_usd', 'spend_usd') then
    raise exception 'reserve_usd: resource must be openai_usd or spend_usd, got "%"', reserve_usd.resource
      using errcode = '22023';
  end if;
  if coalesce(reserve_usd.amount, 0) <= 0 then
    return true;
  end if;
  if reserve_usd.resource = 'openai_usd' then
    if not public.consume_quota('openai_usd', reserve_usd.amount) then
      return false;
    end if;
    if not public.consume_quota('spend_usd', reserve_usd.amount) then
      perform public.refund_quota('openai_usd', reserve_usd.amount);
      return false;
    end if;
    return true;
  end if;
  return public.consume_quota('spend_usd', reserve_usd.amount);
end
$$;

-- settle_usd: replace a reservation by the real cost (the difference can be either way; money
-- already spent is charged even past the budget).
create or replace function public.settle_usd(resource text, reserved numeric, actual numeric)
returns void
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  m date := public.current_month();
  delta numeric := coalesce(settle_usd.actual, 0) - coalesce(settle_usd.reserved, 0);
  r text;
begin
  if delta = 0 then
    return;
  end if;
  foreach r in array case when settle_usd.resource = 'openai_usd'
                          then array['openai_usd', 'spend_usd'] else array['spend_usd'] end
  loop
    insert into public.quota_usage as u (month, resource, used) values (m, r, greatest(delta, 0))
    on conflict (month, resource) do update set used = greatest(u.used + delta, 0), updated_at = now();
  end loop;
end
$$;

-- api_usage by operation ------------------------------------------------------------------------
alter table public.api_usage add column if not exists operation text not null default '';
alter table public.api_usage add column if not exists units bigint not null default 0;
comment on column public.api_usage.operation is
  'What was priced: an X operation of configs.pricing.x (post, post_with_url, owned_read, ...), '
  'an OpenAI call (text, image, moderation), or empty for unpriced calls.';
comment on column public.api_usage.units is
  'Billable units: requests for writes; resources returned for reads, each counted once per UTC day.';
alter table public.api_usage drop constraint if exists api_usage_pkey;
alter table public.api_usage add constraint api_usage_pkey primary key (month, endpoint, operation);

drop function if exists public.record_api_usage(text, integer, integer, integer, integer, integer,
  timestamptz, integer, integer, integer, numeric);
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
  estimated_cost_usd numeric default 0,
  operation text default '',
  units integer default 0
) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.api_usage as u (month, endpoint, operation, calls, posts, reads, rate_limit_limit,
    rate_limit_remaining, rate_limit_reset, openai_input_tokens, openai_output_tokens, images,
    estimated_cost_usd, units)
  values (public.current_month(), record_api_usage.endpoint, coalesce(record_api_usage.operation, ''),
    record_api_usage.calls, record_api_usage.posts, record_api_usage.reads,
    record_api_usage.rate_limit_limit, record_api_usage.rate_limit_remaining,
    record_api_usage.rate_limit_reset, record_api_usage.openai_input_tokens,
    record_api_usage.openai_output_tokens, record_api_usage.images,
    record_api_usage.estimated_cost_usd, record_api_usage.units)
  on conflict (month, endpoint, operation) do update set
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
    units = u.units + excluded.units,
    updated_at = now();
$$;

-- Resources billed today (X bills a resource once per UTC day) ----------------------------------
create table if not exists public.x_billed_resources (
  day date not null,
  kind text not null check (kind in ('post', 'user', 'event')),
  resource_id text not null,
  primary key (day, kind, resource_id)
);
comment on table public.x_billed_resources is
  'Posts and users X billed today: X charges a resource once per UTC day. Pruned after two days.';
alter table public.x_billed_resources enable row level security;
revoke all on table public.x_billed_resources from anon, authenticated;
grant all on table public.x_billed_resources to service_role;

-- record_x_usage: price one X call and record it. Writes are billed per request; reads per
-- resource returned (`resource_ids`), each once per UTC day. `reserved_usd` (taken from the
-- budget before the call) is settled against the real price. Returns the price recorded.
create or replace function public.record_x_usage(
  endpoint text,
  operation text,
  requests integer default 1,
  posts integer default 0,
  resource_kind text default null,
  resource_ids text[] default null,
  reserved_usd numeric default 0,
  rate_limit_limit integer default null,
  rate_limit_remaining integer default null,
  rate_limit_reset timestamptz default null
) returns numeric
language plpgsql
security definer
set search_path = ''
as $$
declare
  billable integer;
  returned integer := coalesce(cardinality(record_x_usage.resource_ids), 0);
  cost numeric;
begin
  if record_x_usage.resource_ids is not null then
    if record_x_usage.resource_kind is null then
      raise exception 'record_x_usage: resource_kind is required with resource_ids' using errcode = '22023';
    end if;
    insert into public.x_billed_resources (day, kind, resource_id)
    select distinct (now() at time zone 'UTC')::date, record_x_usage.resource_kind, r
    from unnest(record_x_usage.resource_ids) as r
    where r is not null
    on conflict do nothing;
    get diagnostics billable = row_count;
  else
    billable := coalesce(record_x_usage.requests, 1);
  end if;
  cost := billable * public.x_price(record_x_usage.operation);
  perform public.record_api_usage(
    endpoint => record_x_usage.endpoint,
    calls => coalesce(record_x_usage.requests, 1),
    posts => coalesce(record_x_usage.posts, 0),
    reads => case when record_x_usage.resource_kind = 'post' then returned else 0 end,
    rate_limit_limit => record_x_usage.rate_limit_limit,
    rate_limit_remaining => record_x_usage.rate_limit_remaining,
    rate_limit_reset => record_x_usage.rate_limit_reset,
    estimated_cost_usd => cost,
    operation => record_x_usage.operation,
    units => billable);
  perform public.settle_usd('spend_usd', record_x_usage.reserved_usd, cost);
  -- X served a call: credits (or the spending limit) are no longer exhausted.
  if exists (select 1 from public.alerts a
             where a.dedupe_key = 'x_credits_exhausted' and a.resolved_at is null) then
    perform public.close_alert('x_credits_exhausted', 'X served a call again (credits are back)');
  end if;
  return cost;
end
$$;

-- set_cap_reset_day: X reported its billing day. When the cycle in progress changes with it, the
-- monthly counters of the calendar month (and of the month before, when the cycle began there)
-- are folded into the new cycle: the count may run high once, never low, so no cap or budget is
-- overrun. True when the day changed.
create or replace function public.set_cap_reset_day(day integer)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  old_m date := public.current_month();
  new_m date;
begin
  if set_cap_reset_day.day is null or set_cap_reset_day.day not between 1 and 31 then
    raise exception 'set_cap_reset_day: day must be 1..31, got %', set_cap_reset_day.day
      using errcode = '22023';
  end if;
  update public.x_account a
  set cap_reset_day = set_cap_reset_day.day, usage_checked_at = now(), updated_at = now()
  where a.id = 1 and a.cap_reset_day is distinct from set_cap_reset_day.day;
  if not found then
    update public.x_account a set usage_checked_at = now() where a.id = 1;
    return false;
  end if;
  new_m := public.current_month();
  if new_m = old_m then
    return true;
  end if;
  insert into public.quota_usage as q (month, resource, used, x_reported, reconciled_at)
  select new_m, u.resource, sum(u.used), max(u.x_reported), max(u.reconciled_at)
  from public.quota_usage u
  where u.month >= (new_m - interval '1 month')::date and u.month <> new_m
  group by u.resource
  on conflict (month, resource) do update
  set used = q.used + excluded.used, updated_at = now();
  delete from public.quota_usage u
  where u.month >= (new_m - interval '1 month')::date and u.month <> new_m;
  insert into public.api_usage as t (month, endpoint, operation, calls, posts, reads,
    openai_input_tokens, openai_output_tokens, images, estimated_cost_usd, units)
  select new_m, u.endpoint, u.operation, sum(u.calls), sum(u.posts), sum(u.reads),
         sum(u.openai_input_tokens), sum(u.openai_output_tokens), sum(u.images),
         sum(u.estimated_cost_usd), sum(u.units)
  from public.api_usage u
  where u.month >= (new_m - interval '1 month')::date and u.month <> new_m
  group by u.endpoint, u.operation
  on conflict (month, endpoint, operation) do update
  set calls = t.calls + excluded.calls, posts = t.posts + excluded.posts,
      reads = t.reads + excluded.reads,
      openai_input_tokens = t.openai_input_tokens + excluded.openai_input_tokens,
      openai_output_tokens = t.openai_output_tokens + excluded.openai_output_tokens,
      images = t.images + excluded.images,
      estimated_cost_usd = t.estimated_cost_usd + excluded.estimated_cost_usd,
      units = t.units + excluded.units, updated_at = now();
  delete from public.api_usage u
  where u.month >= (new_m - interval '1 month')::date and u.month <> new_m;
  return true;
end
$$;

-- Dashboard view: quota_use over the billing cycle (redefined for the new resource). ----------
create or replace view public.quota_use with (security_invoker = true) as
  select c.resource, public.current_month() as month, coalesce(u.used, 0) as used, c.cap,
         case when c.cap > 0 then round(100 * coalesce(u.used, 0) / c.cap, 1) end as percent,
         c.alert_threshold
  from public.quota_caps() c
  left join public.quota_usage u on u.resource = c.resource and u.month = public.current_month();

-- Function privileges: only the owner and the service role. -----------------------------------
do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('validate_pricing_config', 'validate_config', 'x_price',
                        'billing_cycle_start', 'billing_cycle', 'current_month', 'quota_caps',
                        'consume_quota_upto', 'reserve_usd', 'settle_usd', 'record_api_usage',
                        'record_x_usage', 'set_cap_reset_day')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
