-- A tenant purged leaves no copy of its records in the audit trail (review, issue 14).
--
-- Purging a tenant (`delete from public.tenants` once its services are removed,
-- 20261206055000) removed every record of it by cascade, and each cascaded row wrote its
-- DELETE entry with the row in full: the trail then held every message, customer, call
-- summary and transcript line of the tenant twice (the entries of its life, and those of
-- the purge), for good, readable by platform admins. Once the purge commits, the
-- tenant's entries lose their row images, as a customer's erasure leaves its records'
-- (20261204100000): each entry stays, with its actor, action, table, key and time, so the
-- trail still says who did what and who purged it, and `redacted_at` says when the
-- images went. The tenants row's own DELETE keeps its image (the tenant's name and slug:
-- what was purged). At commit (a deferred trigger), after the cascade's own entries are
-- written: a cascade's triggers run after those of the row that started it. The trail is
-- append-only to everyone but its owner; this function is the owner's.

create function private.tenant_purge_trail() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- By audit_logs_tenant_id_idx.
  update public.audit_logs l
  set old_data = null, new_data = null, image_bytes = 0, redacted_at = pg_catalog.now()
  where l.tenant_id = old.id and l.redacted_at is null
    and not (l.table_name = 'tenants' and l.action = 'DELETE');
  return null;
end;
$$;
revoke all on function private.tenant_purge_trail() from public, anon, authenticated;
create constraint trigger tenant_purge_trail after delete on public.tenants
  deferrable initially deferred
  for each row execute function private.tenant_purge_trail();
