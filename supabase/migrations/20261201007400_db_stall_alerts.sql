-- db_stall alerts: a worker statement gave up waiting (lock_timeout / statement_timeout).
--
-- The worker's sessions set lock_timeout and statement_timeout, so a row lock held elsewhere (an
-- operator's open transaction, a long migration) fails the job's statement instead of stalling
-- it while heartbeats keep its lease alive. The worker raises `db_stall:<kind>` (warning) when it
-- happens; this resolves it once a job of that kind has succeeded since the alert was last seen.

create or replace function public.resolve_stall_alerts()
returns table (dedupe_key text, message text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  a record;
  reason text;
begin
  for a in
    select x.dedupe_key, x.last_seen_at,
           coalesce(x.details ->> 'kind', pg_catalog.split_part(x.dedupe_key, ':', 2)) as kind
    from public.alerts x
    where x.kind = 'db_stall' and x.resolved_at is null
  loop
    if exists (select 1 from public.jobs s
               where s.kind = a.kind and s.status = 'succeeded' and s.finished_at > a.last_seen_at) then
      reason := format('%s jobs succeed again', a.kind);
      if public.close_alert(a.dedupe_key, reason) then
        dedupe_key := a.dedupe_key; message := reason;
        return next;
      end if;
    end if;
  end loop;
end
$$;

revoke all on function public.resolve_stall_alerts() from public, anon, authenticated;
grant execute on function public.resolve_stall_alerts() to service_role;
