-- A call the telephony provider reports is the provider's to transcribe and to end; a
-- call people log by hand is theirs (issue 14, review).
--
-- Agents could, through the table (PostgREST):
-- * end a live provider call (PATCH status): the provider's real call.ended then
--   answered applied:false, and the call kept no cost, no recording and a wrong duration;
-- * insert a segment at a seq the provider had not sent yet: the provider's own segment
--   with that seq was then dropped (segments are kept by seq), and the invented line
--   stood in the transcript as the customer's words;
-- * log a call under a provider call id the provider was about to report: its
--   call.started adopted that row (idempotency), with the customer the agent had chosen,
--   so the real transcript landed on another customer's record.
--
-- Now the two are told apart by their id: people log calls under `manual:<their id>`,
-- which the provider's events may not use (the API refuses such an id), so the two can
-- never meet under one id; a person may not change the status of, or add segments to, a
-- call whose id is not `manual:`. The provider's path (a machine: no caller) is as it
-- was. Linking a call to its customer, its outcome and summary, and opening a ticket
-- stay open to agents on every call.

create function private.voice_call_people_rules() returns trigger
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
  if tg_op = 'UPDATE' and new.status is distinct from old.status and old.provider_call_id not like 'manual:%' then
    raise exception 'The telephony provider ends its own calls' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'provider_call')::text;
  end if;
  return new;
end;
$$;
revoke all on function private.voice_call_people_rules() from public, anon, authenticated;
create trigger people_rules before insert or update of status on public.voice_calls
  for each row execute function private.voice_call_people_rules();

create function private.voice_segment_people_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if private.current_user_id() is null then
    return new;
  end if;
  if exists (select 1 from public.voice_calls c
             where c.tenant_id = new.tenant_id and c.id = new.call_id and c.provider_call_id not like 'manual:%') then
    raise exception 'The telephony provider writes its calls'' transcripts' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'provider_call')::text;
  end if;
  return new;
end;
$$;
revoke all on function private.voice_segment_people_rules() from public, anon, authenticated;
create trigger people_rules before insert on public.voice_call_segments
  for each row execute function private.voice_segment_people_rules();
