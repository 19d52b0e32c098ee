-- A call's transcript is final once the call has ended (issue 14 review). Staff could
-- append segments to a completed, failed or missed call through the table (PostgREST),
-- rewriting what a finished call said after the fact; the provider's path already took
-- nothing for an ended call (private.voice_call_segments_appended). Agents still add
-- segments to a call that is ringing or in progress (a call they log by hand).
--
-- A trigger, not the insert policy: it reads the call FOR SHARE, so a staff append and a
-- concurrent end are serialised (the end holds the call FOR NO KEY UPDATE, which a share
-- lock waits for), and it refuses with a code (409 call_ended). The provider's own path
-- (a machine: no caller) already holds the call row and decides for itself.
create function private.voice_segment_call_open() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if private.current_user_id() is null then
    return new;
  end if;
  select c.status into v_status from public.voice_calls c
  where c.tenant_id = new.tenant_id and c.id = new.call_id
  for share;
  if v_status is not null and v_status not in ('ringing', 'in_progress') then
    raise exception 'The call has ended; its transcript is final' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'call_ended')::text;
  end if;
  return new;
end;
$$;
revoke all on function private.voice_segment_call_open() from public, anon, authenticated;
create trigger voice_segment_call_open before insert on public.voice_call_segments
  for each row execute function private.voice_segment_call_open();
