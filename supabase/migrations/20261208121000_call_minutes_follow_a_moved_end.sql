-- Review of 20261208118000: a call's minutes count in the month it ended, but they were
-- recounted only when its duration changed — an end moved into another month with the
-- same duration (an operator's fix of ended_at, a provider's end that names the sweep's
-- duration) left them in the old month. They are recounted when the end moves too.
drop trigger call_minutes_recounted on public.voice_calls;
create trigger call_minutes_recounted after update on public.voice_calls
  for each row when (new.duration_seconds is distinct from old.duration_seconds or new.ended_at is distinct from old.ended_at)
  execute function private.count_call_minutes();
