-- Sealed secrets are bound to their row (shared/crypto.ts: AES-GCM associated data).
-- A webhook endpoint's secret is sealed for (tenant_id, id), which the database
-- chooses, so the function inserts the endpoint first and then seals its secret in the
-- same transaction: admins may set that column on their own endpoints (RLS as for
-- every other column; nobody can read it back).
grant update (secret_encrypted) on public.webhook_endpoints to authenticated;

-- The delivery worker needs each delivery's tenant and endpoint to open its secret.
-- Claims lock as 20261201110000_lock_order.sql says (FOR NO KEY UPDATE).
drop function private.claim_webhook_deliveries(text, int, int);
create function private.claim_webhook_deliveries(p_worker text, p_limit int default 20, p_lease_seconds int default 60)
returns table (delivery_id bigint, attempts int, url text, secret_encrypted text, message_id text, type text, payload jsonb,
               created_at timestamptz, tenant_id uuid, endpoint_id uuid)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  return query
  with due as (
    select d.id from private.webhook_deliveries d
    join public.webhook_endpoints e on e.tenant_id = d.tenant_id and e.id = d.endpoint_id and e.enabled
    where ((d.status = 'pending' and d.next_attempt_at <= now())
        or (d.status = 'delivering' and d.locked_until < now()))
      and not exists (
        select 1 from private.webhook_deliveries p
        where p.endpoint_id = d.endpoint_id and p.ordering_key = d.ordering_key
          and p.status in ('pending', 'delivering') and p.id < d.id)
    order by d.id
    limit p_limit
    for no key update of d skip locked
  ), claimed as (
    update private.webhook_deliveries d set status = 'delivering', locked_by = p_worker,
      locked_until = now() + make_interval(secs => p_lease_seconds), attempts = d.attempts + 1
    from due where d.id = due.id
    returning d.*
  )
  select c.id, c.attempts, e.url, e.secret_encrypted, ev.message_id, ev.type, ev.payload, ev.created_at,
         c.tenant_id, c.endpoint_id
  from claimed c
  join public.webhook_endpoints e on e.tenant_id = c.tenant_id and e.id = c.endpoint_id
  join private.webhook_events ev on ev.id = c.event_id
  order by c.id;
end;
$$;
revoke all on function private.claim_webhook_deliveries(text, int, int) from public, anon, authenticated;
grant execute on function private.claim_webhook_deliveries(text, int, int) to service_role;
