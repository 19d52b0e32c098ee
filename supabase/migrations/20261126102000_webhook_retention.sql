-- Webhook history that only serves deduplication and diagnosis is kept for 30 days: the
-- inbox (a provider retries for far less), finished deliveries with their events and
-- attempts, replies sent or given up. A daily job of the one queue (task `prune`,
-- scheduled in 20261126102100_schedules.sql).

create index webhook_inbox_received_idx on private.webhook_inbox (received_at);
create index webhook_events_created_idx on private.webhook_events (created_at);
create index chatwoot_replies_created_idx on private.chatwoot_replies (created_at) where status in ('sent', 'failed');

create function private.prune_webhook_history(p_keep interval default interval '30 days') returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_count int := 0;
  n int;
begin
  delete from private.webhook_inbox where received_at < now() - p_keep;
  get diagnostics n = row_count; v_count := v_count + n;
  delete from private.webhook_events ev where ev.created_at < now() - p_keep
    and not exists (select 1 from private.webhook_deliveries d where d.event_id = ev.id and d.status in ('pending', 'delivering'));
  get diagnostics n = row_count; v_count := v_count + n;
  delete from private.chatwoot_replies where created_at < now() - p_keep and status in ('sent', 'failed');
  get diagnostics n = row_count; v_count := v_count + n;
  return v_count;
end;
$$;
revoke all on function private.prune_webhook_history(interval) from public, anon, authenticated;
grant execute on function private.prune_webhook_history(interval) to service_role;
