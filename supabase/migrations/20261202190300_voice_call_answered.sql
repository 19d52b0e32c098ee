-- call.answered (issue 14, review): the provider says when a ringing call was picked up.
--
-- Until now only a transcript segment moved a call from ringing to in_progress (a
-- repeated call.started with answered: true changed nothing, being a repeat). A provider
-- that sends the transcript at the end of the call left it ringing: after 15 minutes the
-- stale-call sweep ended it as missed, with a provisional call.ended webhook, while the
-- customer was still talking; and answered_at became the time the first segment arrived.
--
-- Idempotent like the other events: the first answer of a ringing call applies
-- (in_progress, answered_at the reported time — never before the start, never ahead of
-- now); a repeated or late one (the call is in progress or over) changes nothing. A
-- suspended tenant's call under way is still answered; a deleted tenant takes no event.

create function private.voice_call_answered(p_tenant_id uuid, p_provider_call_id text, p_answered_at timestamptz)
returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  c public.voice_calls;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select * into c from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id
  for no key update;
  if c.id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if c.status <> 'ringing' then
    return query select false, c.id, c.status;
    return;
  end if;
  update public.voice_calls v
  set status = 'in_progress', answered_at = least(greatest(coalesce(p_answered_at, now()), v.started_at), now())
  where v.tenant_id = p_tenant_id and v.id = c.id;
  return query select true, c.id, 'in_progress'::text;
end;
$$;
revoke all on function private.voice_call_answered(uuid, text, timestamptz) from public, anon, authenticated;
grant execute on function private.voice_call_answered(uuid, text, timestamptz) to service_role;
