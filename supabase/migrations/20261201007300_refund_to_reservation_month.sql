-- Refunds go back to the month of their reservation.
--
-- A reservation taken at 23:59:59 UTC on the last day of a month and given back a second later
-- belongs to the old month: refunding it from the new one would lower the new month's count
-- (or do nothing, on a new month's first refund) while the old month keeps a post X never
-- billed. refund_quota takes the reservation's month; without one it means the current month,
-- as before (so existing callers keep their meaning).

drop function if exists public.refund_quota(text, numeric);

create or replace function public.refund_quota(
  resource text,
  amount numeric default 1,
  month date default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  -- A month is named by the first day of its billing cycle (current_month(), which follows X's
  -- cap_reset_day), as consume_quota's callers see it.
  if refund_quota.month is not null
     and refund_quota.month <> public.billing_cycle_start(refund_quota.month::timestamp at time zone 'UTC') then
    raise exception 'refund_quota: month must be the first day of a billing cycle, got %', refund_quota.month
      using errcode = '22023';
  end if;
  update public.quota_usage u
  set used = greatest(u.used - refund_quota.amount, 0), updated_at = now()
  where u.month = coalesce(refund_quota.month, public.current_month())
    and u.resource = refund_quota.resource;
end
$$;

-- The month a post's reservation was taken in: the one it started posting in (the quota is
-- consumed in the same transaction that sets post_started_at). The same UTC month as
-- current_month() (the billing cycle's first day), of that moment instead of now().
create or replace function public.post_reservation_month(scheduled_tweet_id bigint)
returns date
language sql
stable
security definer
set search_path = ''
as $$
  select public.billing_cycle_start(s.post_started_at)
  from public.scheduled_tweets s where s.id = post_reservation_month.scheduled_tweet_id;
$$;

do $$
declare
  fn regprocedure;
begin
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('refund_quota', 'post_reservation_month')
  loop
    execute format('revoke all on function %s from public, anon, authenticated', fn);
    execute format('grant execute on function %s to service_role', fn);
  end loop;
end
$$;
