-- The daily prune of idempotency keys matched the rows to delete by (tenant, user, key),
-- a key's primary key before API keys had namespaces of their own (20261202080100 added
-- api_key_id to it): a person's expired key took with it their API key's key of the same
-- text, however young — the integration's retry after an ambiguous 503 then made a second
-- ticket — and was counted twice. It matches the whole primary key now.

-- Redefined (20261207170000_prune_in_batches.sql): the whole key.
create or replace function private.prune_idempotency_keys(p_keep interval default interval '24 hours') returns int
language sql volatile security definer
set search_path = ''
as $$
  with dropped as (
    delete from private.idempotency_keys k
    where (k.tenant_id, k.user_id, k.api_key_id, k.key) in (
      select x.tenant_id, x.user_id, x.api_key_id, x.key from private.idempotency_keys x
      where x.created_at < now() - p_keep
      order by x.created_at limit 5000
      for update skip locked)
    returning 1
  )
  select count(*)::int from dropped;
$$;
