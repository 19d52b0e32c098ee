-- A call's duration is at most a week, however early its start was reported (review,
-- issue 14).
--
-- A provider's duration is at most 7 days (POST /calls/events), but one the database
-- works out from the call's times (an end without a duration, the stale-call sweep's end,
-- a manual call's correction) was bounded only by the column's range. A start reported
-- decades early (a provider's clock error, the epoch sent for "unset") made a call of
-- 2,147,483,647 seconds, and since call minutes are counted (20261206013000) the tenant's
-- month was billed 35,791,395 minutes. Every duration written from now on is held to
-- the week the API takes, last among the row's checks (triggers fire by name), and only
-- where it is over. Calls stored before keep theirs (an operator corrects one with an
-- update of its duration, which the minutes' trigger counts as a difference).
create function private.voice_call_duration_bounded() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.duration_seconds := 7 * 86400;
  return new;
end;
$$;
revoke all on function private.voice_call_duration_bounded() from public, anon, authenticated;
create trigger zz_duration_bounded before insert or update on public.voice_calls
  for each row when (new.duration_seconds > 7 * 86400)
  execute function private.voice_call_duration_bounded();
