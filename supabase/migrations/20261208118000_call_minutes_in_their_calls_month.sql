-- A call's minutes count in the month the call ended (UTC), and a correction moves them
-- there (review of usage counters).
--
-- They counted in the month the duration was recorded, and a correction counted its
-- difference in the month of the correction: a decrease in a month with no row yet was
-- lost, and in one with a row it took minutes from that month's other calls (clamped at
-- 0, which hid it) — the stale-call sweep's provisional end on the last evening of a
-- month, corrected by the provider's real end after midnight, billed the sweep's guess
-- to the first month and took the difference from the second; an operator's fix of a
-- call billed decades of minutes left them where they were. Now both sides of a change
-- count in their own call's month: the old minutes leave the month of the old end, the
-- new ones join the month of the new end. (Minutes counted before this migration in
-- another month than their call's end may stay there; a decrease that finds no row, or
-- fewer minutes than it takes, still stops at 0.)

-- Redefined (20261206013000_call_minutes_counted.sql).
create or replace function private.count_call_minutes() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_new bigint := ceil(coalesce(new.duration_seconds, 0) / 60.0)::bigint;
  v_old bigint := case when tg_op = 'UPDATE' then ceil(coalesce(old.duration_seconds, 0) / 60.0)::bigint else 0 end;
  v_new_period date := date_trunc('month', coalesce(new.ended_at, now()) at time zone 'UTC')::date;
  v_old_period date := case when tg_op = 'UPDATE'
    then date_trunc('month', coalesce(old.ended_at, now()) at time zone 'UTC')::date end;
begin
  -- One month: its difference alone.
  if v_old_period = v_new_period then
    v_new := v_new - v_old;
    v_old := 0;
  end if;
  if v_old > 0 then
    update private.usage_counters u set used = greatest(u.used - v_old, 0), updated_at = now()
    where u.tenant_id = new.tenant_id and u.metric = 'call_minutes' and u.period = v_old_period;
  end if;
  if v_new > 0 then
    insert into private.usage_counters as u (tenant_id, metric, period, used)
    values (new.tenant_id, 'call_minutes', v_new_period, v_new)
    on conflict (tenant_id, metric, period) do update set used = u.used + excluded.used, updated_at = now();
  elsif v_new < 0 then
    update private.usage_counters u set used = greatest(u.used + v_new, 0), updated_at = now()
    where u.tenant_id = new.tenant_id and u.metric = 'call_minutes' and u.period = v_new_period;
  end if;
  return null;
end;
$$;
