-- A document past the tenant's knowledge quota is refused before its chunks are written
-- (issue 14; 20261203210000_knowledge_quotas.sql, 20261203220000_knowledge_quotas_review.sql).
--
-- The count (zz_count_usage) runs after a document's chunks and postings are written,
-- so the counter row is not locked while they are; but a refused upload did all of that
-- work first and then rolled it back. A megabyte of content is about a thousand chunks
-- and tens of thousands of postings: a tenant at its limit, retrying, had the database
-- do it again on every request, refused or not. Now a before-row trigger reads the
-- counter without locking it and refuses at once what is already past the limit (the
-- same 403 plan_limit_reached). Uploads racing at the limit still pass this look, and
-- the count after the chunks refuses those past it, as before: this check only saves
-- work, the count decides.

-- Raises plan_limit_reached as private.use_quota does, when adding p_delta to the
-- tenant's metric as counted now (read without a lock) would pass its limit. Changes
-- nothing. For triggers only.
create function private.assert_quota_room(p_tenant_id uuid, p_metric text, p_delta bigint) returns void
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_max bigint;
  v_used bigint;
begin
  if p_delta <= 0 then
    return;
  end if;
  v_max := private.tenant_limit(p_tenant_id, p_metric);
  if v_max is null then
    return;
  end if;
  select u.used into v_used from private.usage_counters u
  where u.tenant_id = p_tenant_id and u.metric = p_metric and u.period = private.usage_period(p_metric);
  v_used := coalesce(v_used, 0);
  if v_used + p_delta > v_max then
    raise exception 'The plan''s limit of % % is reached', v_max, replace(p_metric, '_', ' ')
      using errcode = 'PT403',
            detail = jsonb_build_object('code', 'plan_limit_reached', 'details', jsonb_build_object(
              'limit', p_metric, 'max', v_max, 'usage', v_used, 'requested', p_delta,
              'plan', (select t.plan from public.tenants t where t.id = p_tenant_id)))::text;
  end if;
end;
$$;
revoke all on function private.assert_quota_room(uuid, text, bigint) from public, anon, authenticated;

create function private.kb_document_within_quota() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.assert_quota_room(new.tenant_id, 'knowledge_documents', 1);
    perform private.assert_quota_room(new.tenant_id, 'knowledge_bytes', pg_catalog.octet_length(new.content));
  else
    perform private.assert_quota_room(new.tenant_id, 'knowledge_bytes',
      pg_catalog.octet_length(new.content) - pg_catalog.octet_length(old.content));
  end if;
  return new;
end;
$$;
revoke all on function private.kb_document_within_quota() from public, anon, authenticated;
-- Named to fire after require_feature and require_feature_for_content (before-row
-- triggers fire in name order): a plan without the feature answers feature_not_in_plan.
create trigger within_quota before insert or update of content on public.kb_documents
  for each row execute function private.kb_document_within_quota();
