-- Calls, after a review (issue 14): what people and events could still write that made a
-- call's record wrong.
--
-- * A person could wipe out the provider's end of a call the sweep had ended: a write
--   naming the status it already had (`set status = status`) counted as the call's real
--   end (the replacing branch of private.voice_call_status), cleared timed_out_at, sent a
--   call.ended replacing the provisional one, and the provider's own call.ended then
--   changed nothing (no cost, no recording, no duration). People may not write the status
--   of a provider's call at all once the sweep has ended it.
-- * Times: a call logged by hand took any started_at (year 2999: answered "before" it
--   started, never swept; 'infinity': a null in the API); an end event could put ended_at
--   before the start and give a never-answered call a week of duration. Now a start ahead
--   of now is now (as the provider's path already did), an end is never before the start
--   or the answer, a call nobody answered lasted 0 seconds, and the table says so in
--   checks.
-- * A transcript's seq had no upper bound on the people's path (the provider's is
--   1,000,000): the database now holds both to it.
-- * Merging tickets left the calls on the closed source ticket, where they could never be
--   linked again (already_linked): the calls follow the merge.

-- ------------------------------------------------------------------ people and the provider's calls

-- Redefined: as 20261202190200_voice_provider_calls.sql, and a person's write naming the
-- status of a provider's call the sweep ended is refused even when it names the same
-- status (it would take the place of the provider's end).
create or replace function private.voice_call_people_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if private.current_user_id() is null then
    return new;
  end if;
  if tg_op = 'INSERT' and new.provider_call_id not like 'manual:%' then
    raise exception 'A call logged by a person has an id starting with manual:' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'provider_call_id', 'message', 'must start with manual: (the provider''s ids are its own)'))))::text;
  end if;
  if tg_op = 'UPDATE' and old.provider_call_id not like 'manual:%'
    and (new.status is distinct from old.status or old.timed_out_at is not null) then
    raise exception 'The telephony provider ends its own calls' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'provider_call')::text;
  end if;
  return new;
end;
$$;

-- ------------------------------------------------------------------ times that hold together

-- Redefined: as 20261202170300_voice_stale_calls_review.sql, and the times hold together
-- whoever writes them: a start ahead of now is now; an end is not before the start or
-- the answer; a call that was never answered lasted 0 seconds, whatever an event says.
create or replace function private.voice_call_status() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_replaces boolean := tg_op = 'UPDATE' and old.timed_out_at is not null;
  v_reachable text[];
begin
  if tg_op = 'INSERT' then
    if new.status not in ('ringing', 'in_progress') then
      raise exception 'A call starts ringing or in progress, not %', new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details',
          jsonb_build_object('from', null, 'to', new.status, 'allowed', jsonb_build_array('ringing', 'in_progress')))::text;
    end if;
    -- A call "started" in the future would be answered before its start and never swept.
    new.started_at := least(new.started_at, now());
    if new.answered_at is not null then
      new.answered_at := least(greatest(new.answered_at, new.started_at), now());
    end if;
  elsif v_replaces then
    -- The sweep ended ringing calls as missed and calls in progress as failed.
    v_reachable := case when old.status = 'missed' then array['completed', 'failed', 'missed']
                        else array['completed', 'failed'] end;
    if new.status <> all (v_reachable) then
      raise exception 'The timed-out % call cannot end as %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(v_reachable)))::text;
    end if;
    new.timed_out_at := null;
    if new.status = 'completed' then
      new.answered_at := coalesce(new.answered_at, new.started_at);
    end if;
  elsif new.status is distinct from old.status then
    if new.status <> all (private.allowed_voice_call_transitions(old.status)) then
      raise exception 'A % call cannot become %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(private.allowed_voice_call_transitions(old.status))))::text;
    end if;
  else
    return new;
  end if;
  -- A replaced end keeps the answer it had: a call that was ringing and ends failed was
  -- never answered.
  if new.status <> 'ringing' and new.status <> 'missed' and not v_replaces then
    new.answered_at := coalesce(new.answered_at, greatest(now(), new.started_at));
  end if;
  if new.status in ('completed', 'failed', 'missed') then
    -- An event's end before the start (or the answer) is taken as the later of the two.
    new.ended_at := greatest(coalesce(new.ended_at, now()), new.started_at, new.answered_at);
    if new.answered_at is null then
      new.duration_seconds := 0;
    else
      -- Capped at the column's range: a start reported decades early must not make the
      -- end (or the sweep) fail.
      new.duration_seconds := coalesce(new.duration_seconds,
        least(greatest(0, floor(extract(epoch from new.ended_at - new.answered_at))), 2147483647)::int);
    end if;
  end if;
  return new;
end;
$$;

-- Rows the old rules let through are brought within the new ones first (a person's
-- start in 2999 or at -infinity, an end event before the start), as the trigger above
-- now does for new ones, so the checks hold for every row.
update public.voice_calls set started_at = least(created_at, now())
where not isfinite(started_at) or started_at > now();
update public.voice_calls set answered_at = least(greatest(answered_at, started_at), now())
where answered_at < started_at or answered_at > now();
update public.voice_calls set ended_at = greatest(ended_at, answered_at, started_at)
where ended_at < coalesce(answered_at, started_at);
alter table public.voice_calls
  add constraint voice_calls_started_at_check check (isfinite(started_at)),
  add constraint voice_calls_answered_at_check check (answered_at >= started_at),
  add constraint voice_calls_ended_at_check check (ended_at >= coalesce(answered_at, started_at));

-- ------------------------------------------------------------------ a transcript's length

-- The provider's events bound seq at 1,000,000 (functions/voice/schemas.ts); people's
-- segments of their manual calls now are too, by the database. Not validated against the
-- rows already there: a segment past it is a person's own, kept as written.
alter table public.voice_call_segments
  drop constraint voice_call_segments_seq_check,
  add constraint voice_call_segments_seq_check check (seq between 0 and 1000000) not valid;

-- ------------------------------------------------------------------ merged tickets

-- Redefined: as 20261202090600_voice_call_tickets.sql, and a call may follow its ticket
-- into the ticket it was merged into (the only move of a linked call).
create or replace function private.voice_call_ticket_once() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.ticket_id is not null and new.ticket_id is distinct from old.ticket_id
    and not exists (select 1 from public.tickets t
                    where t.tenant_id = old.tenant_id and t.id = old.ticket_id and t.merged_into_id = new.ticket_id) then
    raise exception 'This call already has a ticket' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'already_linked', 'details', jsonb_build_object('ticket_id', old.ticket_id))::text;
  end if;
  return new;
end;
$$;

-- The calls of a merged ticket move to the ticket it was merged into, as its messages and
-- attachments do (private.merge_tickets). Definer: whoever merges may not be allowed to
-- write calls (a plan without voice keeps its tickets).
create function private.voice_calls_follow_merge() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.voice_calls set ticket_id = new.merged_into_id
  where tenant_id = new.tenant_id and ticket_id = new.id;
  return null;
end;
$$;
revoke all on function private.voice_calls_follow_merge() from public, anon, authenticated;
create trigger voice_calls_follow_merge after update of merged_into_id on public.tickets
  for each row when (new.merged_into_id is not null and old.merged_into_id is null)
  execute function private.voice_calls_follow_merge();

-- Calls already on a merged ticket follow it, through every merge since, to the ticket
-- it ended in.
do $follow$
begin
  loop
    update public.voice_calls v set ticket_id = t.merged_into_id
    from public.tickets t
    where t.tenant_id = v.tenant_id and t.id = v.ticket_id and t.merged_into_id is not null;
    exit when not found;
  end loop;
end;
$follow$;
