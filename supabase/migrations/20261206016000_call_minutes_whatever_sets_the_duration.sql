-- Call minutes are counted whatever sets a call's duration (issue 14, review of
-- 20261206013000_call_minutes_counted.sql).
--
-- That migration's update trigger was `after update of duration_seconds`, which fires
-- only when an UPDATE names the column. A call whose duration a BEFORE trigger computes
-- from its times — ended by setting status and ended_at: a person's manual call, the
-- stale-call sweep — was never counted. The trigger now fires on any update and counts
-- when the duration it finds differs from the one before.
drop trigger call_minutes_recounted on public.voice_calls;
create trigger call_minutes_recounted after update on public.voice_calls
  for each row when (new.duration_seconds is distinct from old.duration_seconds) execute function private.count_call_minutes();

