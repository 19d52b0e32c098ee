-- Call minutes are counted (issue 14, review of the voice work).
--
-- 20261202071000_usage_quotas.sql promised call_minutes "counted per month for the voice
-- work" and GET /tenants/{id}/usage lists the metric, but nothing counted it: it read 0
-- however many calls ended. A call's minutes now count in the month its duration is
-- recorded, each call rounded up to the whole minute (a 61-second call is two minutes, as
-- telephony bills), by triggers in the transaction that records it, whichever path writes
-- it (the provider's call.ended, a person's manual call, a direct write). A duration
-- corrected later counts the difference in the month of the correction; a call deleted
-- later keeps its minutes counted (they were used). Counting only: no plan limits call
-- minutes, and a call's end is never refused for them, so the counter row is written
-- here rather than through private.use_quota, which refuses past a limit.
create function private.count_call_minutes() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_delta bigint := ceil(coalesce(new.duration_seconds, 0) / 60.0)::bigint
    - case when tg_op = 'UPDATE' then ceil(coalesce(old.duration_seconds, 0) / 60.0)::bigint else 0 end;
  v_period date := private.usage_period('call_minutes');
begin
  if v_delta > 0 then
    insert into private.usage_counters as u (tenant_id, metric, period, used)
    values (new.tenant_id, 'call_minutes', v_period, v_delta)
    on conflict (tenant_id, metric, period) do update set used = u.used + excluded.used, updated_at = now();
  elsif v_delta < 0 then
    update private.usage_counters u set used = greatest(u.used + v_delta, 0), updated_at = now()
    where u.tenant_id = new.tenant_id and u.metric = 'call_minutes' and u.period = v_period;
  end if;
  return null;
end;
$$;
revoke all on function private.count_call_minutes() from public, anon, authenticated, service_role;

create trigger call_minutes_counted after insert on public.voice_calls
  for each row when (new.duration_seconds is not null) execute function private.count_call_minutes();
create trigger call_minutes_recounted after update of duration_seconds on public.voice_calls
  for each row when (new.duration_seconds is distinct from old.duration_seconds) execute function private.count_call_minutes();
