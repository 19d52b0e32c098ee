-- A tenant purged leaves no copy of its records in the audit trail (review, issue 14).
--
-- Purging a tenant (`delete from public.tenants` once its services are removed,
-- 20261206055000) removed every record of it by cascade, and each cascaded row wrote its
-- DELETE entry with the row in full: the trail then held every message, customer, call
-- summary and transcript line of the tenant twice (the entries of its life, and those of
-- the purge), for good, readable by platform admins, while every other way out of the
-- platform (a customer's erasure, a deleted call) takes its copies with it. Once the
-- purge commits, the tenant's entries go but one: the tenants row's own DELETE, which
-- says who purged it and when. At commit (a deferred trigger), after the cascade's own
-- entries are written: a cascade's triggers run after those of the row that started it.
-- The trail is append-only to everyone but its owner; this function is the owner's.

create function private.tenant_purge_trail() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- By audit_logs_tenant_id_idx.
  delete from public.audit_logs l
  where l.tenant_id = old.id and not (l.table_name = 'tenants' and l.action = 'DELETE');
  return null;
end;
$$;
revoke all on function private.tenant_purge_trail() from public, anon, authenticated;
create constraint trigger tenant_purge_trail after delete on public.tenants
  deferrable initially deferred
  for each row execute function private.tenant_purge_trail();
