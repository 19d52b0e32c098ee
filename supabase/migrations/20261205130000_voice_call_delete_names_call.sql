-- A call that has not ended is refused alike on both paths (issue 14, from stop 39's
-- Left): `DELETE /voice/calls/{id}` answered 409 `call_in_progress` with
-- `details.status`, a delete through the table the same code with `details.call_ids`,
-- so a client handling the code read a different field per path. The route's refusal
-- now names the call too (`call_ids`, one id) and keeps its `status`.

-- Redefined (20261204120000_voice_call_table_deletes.sql): details.call_ids as well.
create or replace function private.voice_call_delete(p_tenant_id uuid, p_call_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  -- Called by people with their own rights: the table's delete policy's rule.
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not coalesce(p_tenant_id = any (private.tenant_ids('admin', true)) or private.is_platform_admin(), false) then
    raise exception 'permission denied to delete the calls of this tenant' using errcode = '42501';
  end if;
  -- Locked first: an event changing the call's status waits for the delete, then finds
  -- the call gone (dropped, by its tombstone).
  select case when v.provider_call_id like 'manual:%' then 'manual' else v.status end into v_status
  from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.id = p_call_id
  for update;
  if not found then
    raise exception 'Call not found' using errcode = 'PT404', detail = jsonb_build_object('code', 'not_found');
  end if;
  -- The trigger refuses people alone; this refuses the service role too, with the
  -- status. A call people logged (manual:) goes in any state: no provider reports it.
  if v_status in ('ringing', 'in_progress') then
    raise exception 'The call has not ended; it can be deleted once it has' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'call_in_progress',
                                  'details', jsonb_build_object('call_ids', jsonb_build_array(p_call_id), 'status', v_status));
  end if;
  -- The call's webhook events and its call.deleted: by the trigger `notified`.
  delete from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = p_call_id;
end;
$$;
