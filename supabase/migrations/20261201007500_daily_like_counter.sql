-- The daily like cap as an atomic counter, like the monthly quotas.
--
-- Counting today's liked replies and then liking let every handler running at once pass the
-- check (up to the total concurrency over the cap). A like now takes a unit from today's (UTC)
-- counter first, in one statement that refuses when the cap is reached; the reply remembers the
-- day it holds a unit for, so a retry of the same like does not take a second one. A like X
-- certainly did not do gives its unit back.

create table if not exists public.daily_likes (
  day date primary key,
  used integer not null default 0 check (used >= 0),
  updated_at timestamptz not null default now()
);
comment on table public.daily_likes is
  'Likes taken against configs.engagement.daily_like_cap, per UTC day (reserve_daily_like).';
alter table public.daily_likes enable row level security;
revoke all on table public.daily_likes from anon, authenticated;
grant all on table public.daily_likes to service_role;

alter table public.replies add column if not exists like_reserved_on date;
comment on column public.replies.like_reserved_on is
  'The UTC day this reply holds a unit of the daily like cap for (its like was attempted then).';

-- reserve_daily_like: take one of today's likes for `reply_id` if it fits under `cap`. True
-- when taken, or when the reply already holds one for today; false (nothing taken) at the cap.
create or replace function public.reserve_daily_like(reply_id text, cap integer)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  today date := (now() at time zone 'UTC')::date;
  previous date;
begin
  if reserve_daily_like.cap is null or reserve_daily_like.cap < 0 then
    raise exception 'reserve_daily_like: cap must be zero or more, got %',
      coalesce(reserve_daily_like.cap::text, 'null') using errcode = '22023';
  end if;
  -- The reply's row lock orders concurrent attempts at the same like.
  select r.like_reserved_on into previous from public.replies r
  where r.reply_id = reserve_daily_like.reply_id for update;
  if not found then
    raise exception 'reserve_daily_like: reply % does not exist', reserve_daily_like.reply_id
      using errcode = '22023';
  end if;
  if previous = today then
    return true;
  end if;
  insert into public.daily_likes (day) values (today) on conflict (day) do nothing;
  update public.daily_likes d set used = d.used + 1, updated_at = now()
  where d.day = today and d.used < reserve_daily_like.cap;
  if not found then
    return false;
  end if;
  update public.replies r set like_reserved_on = today where r.reply_id = reserve_daily_like.reply_id;
  return true;
end
$$;

-- release_daily_like: X certainly did not like it (rate limited, refused): give today's unit back.
create or replace function public.release_daily_like(reply_id text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  today date := (now() at time zone 'UTC')::date;
begin
  update public.replies r set like_reserved_on = null
  where r.reply_id = release_daily_like.reply_id and r.like_reserved_on = today and not r.liked;
  if not found then
    return false;
  end if;
  update public.daily_likes d set used = greatest(d.used - 1, 0), updated_at = now()
  where d.day = today;
  return true;
end
$$;

do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('reserve_daily_like', 'release_daily_like')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
