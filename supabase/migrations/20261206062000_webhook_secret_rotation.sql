-- An endpoint's signing secret can be rotated, the old one signing beside the new for a
-- while.
--
-- A receiver's secret that leaked could only be replaced by deleting the endpoint and
-- registering it again: that took its pending and held deliveries and their history
-- with it, changed its id, and left the receiver no moment when both secrets verified.
-- POST /tenants/{id}/webhooks/{endpointId}/rotate-secret now seals a new secret and
-- keeps the current one as the previous secret until previous_secret_expires_at (24
-- hours unless the request says otherwise; 0: at once, for a secret that leaked).
-- Deliveries meanwhile carry both signatures (Standard Webhooks: space-separated in
-- webhook-signature), so the receiver switches when it likes. Admins read when the
-- secret was rotated and until when the previous one signs; nobody reads a secret back.

alter table public.webhook_endpoints
  add column previous_secret_encrypted text,
  add column previous_secret_expires_at timestamptz,
  add column secret_rotated_at timestamptz,
  add constraint webhook_endpoints_previous_secret_check
    check ((previous_secret_encrypted is null) = (previous_secret_expires_at is null));
-- The trail's trigger names the table's columns (the sealed ones left out): made again.
select private.enable_audit('public.webhook_endpoints');

-- Admins read when; they set the overlap (the route does, as the caller). The sealed
-- secrets are never granted for reading, so the previous one is kept by the trigger
-- below, not by the caller (who cannot read the current one to move it).
grant select (previous_secret_expires_at, secret_rotated_at) on public.webhook_endpoints to authenticated;
grant update (previous_secret_expires_at) on public.webhook_endpoints to authenticated;

-- A new secret (not the first, which registration seals into the empty one) is a
-- rotation: the one it replaces signs on while previous_secret_expires_at is ahead,
-- else nothing does; and the rotation's time is kept.
create function private.webhook_endpoint_secret_rotated() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.secret_encrypted is distinct from old.secret_encrypted and old.secret_encrypted <> '' then
    new.secret_rotated_at := now();
    if new.previous_secret_expires_at > now() then
      new.previous_secret_encrypted := old.secret_encrypted;
    else
      new.previous_secret_encrypted := null;
      new.previous_secret_expires_at := null;
    end if;
  elsif new.previous_secret_expires_at is distinct from old.previous_secret_expires_at
        and new.previous_secret_expires_at is not null and old.previous_secret_encrypted is null then
    new.previous_secret_expires_at := null; -- no previous secret to keep signing with
  end if;
  return new;
end;
$$;
revoke all on function private.webhook_endpoint_secret_rotated() from public, anon, authenticated;
create trigger webhook_endpoint_secret_rotated before update on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_secret_rotated();

-- The previous secret of a delivery's endpoint while it still signs; null otherwise. For
-- the delivery job, beside private.webhook_delivery_context.
create function private.webhook_endpoint_previous_secret(p_tenant_id uuid, p_endpoint_id uuid) returns text
language sql stable security definer
set search_path = ''
as $$
  select e.previous_secret_encrypted from public.webhook_endpoints e
  where e.tenant_id = p_tenant_id and e.id = p_endpoint_id and e.previous_secret_expires_at > now()
$$;
revoke all on function private.webhook_endpoint_previous_secret(uuid, uuid) from public, anon, authenticated;
grant execute on function private.webhook_endpoint_previous_secret(uuid, uuid) to service_role;
