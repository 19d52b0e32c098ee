-- An API key deleted outright (by the service role or an operator; the API revokes)
-- while it still counted — unrevoked — gives its place in the plan's api_keys limit back
-- (review of usage counters). The count moved on insert and revocation only: the place
-- stayed taken for good, and a starter tenant was refused keys with fewer than five live.
-- A purge's cascade, its tenant already gone, has nothing to give back to.

-- Redefined (20261202091000_api_key_quota.sql): deletions too.
create or replace function private.count_api_key() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    if new.revoked_at is null then
      perform private.use_quota(new.tenant_id, 'api_keys', 1);
    end if;
  elsif tg_op = 'DELETE' then
    if old.revoked_at is null and exists (select 1 from public.tenants t where t.id = old.tenant_id) then
      perform private.use_quota(old.tenant_id, 'api_keys', -1);
    end if;
  elsif old.revoked_at is null and new.revoked_at is not null then
    perform private.use_quota(old.tenant_id, 'api_keys', -1);
  end if;
  return null;
end;
$$;
drop trigger count_usage on public.api_keys;
create trigger count_usage after insert or update of revoked_at or delete on public.api_keys
  for each row execute function private.count_api_key();
