-- Outbound webhook events of the voice product (issue 14): `call.started` when a call
-- is created, `call.ended` when it reaches completed, failed or missed, and
-- `customer.created`. Written to the outbox by triggers in the same transaction as the
-- change, like the tickets' events (private.emit_webhook_event: only where an enabled
-- endpoint wants the type), ordered per call and per customer.
create function private.voice_webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row jsonb;
  v_type text;
  v_key text;
begin
  if tg_table_name = 'voice_calls' then
    if tg_op = 'INSERT' then
      v_type := 'call.started';
    elsif new.status in ('completed', 'failed', 'missed') and old.status not in ('completed', 'failed', 'missed') then
      v_type := 'call.ended';
    else
      return null;
    end if;
    v_key := 'call:' || new.id;
  else
    v_type := 'customer.created';
    v_key := 'customer:' || new.id;
  end if;
  -- Nobody listens in this tenant: nothing to build.
  if not exists (select 1 from public.webhook_endpoints e where e.tenant_id = new.tenant_id and e.enabled) then
    return null;
  end if;
  v_row := private.api_timestamps(to_jsonb(new), tg_relid);
  perform private.emit_webhook_event(new.tenant_id, v_type, v_key,
    jsonb_build_object('type', v_type, 'tenant_id', new.tenant_id, 'data', v_row,
                       'occurred_at', private.api_timestamp(clock_timestamp())));
  return null;
end;
$$;
revoke all on function private.voice_webhook_outbox() from public, anon, authenticated;

create trigger webhook_outbox after insert or update of status on public.voice_calls
  for each row execute function private.voice_webhook_outbox();
create trigger webhook_outbox after insert on public.voice_customers
  for each row execute function private.voice_webhook_outbox();
