-- The knowledge base within the plan's limits (issues 14 and 15). The plan had the
-- knowledge_base feature but no bound: a pro tenant could add knowledge bases and
-- documents without end, each byte of text stored again as chunks (both tsvectors) and
-- postings (20261203150000_kb_postings.sql, ~1.9× the chunks), and each knowledge base
-- adds its lists to every one-word search of the tenant.
--
-- * knowledge_bases: a tenant's knowledge bases (starter 0, pro 20, enterprise no limit).
-- * knowledge_bytes: the bytes (UTF-8) of its documents' content (starter 0, pro 256 MiB,
--   enterprise no limit); a change of content counts the difference, a deletion (of a
--   document, or of its knowledge base with it) gives the bytes back.
-- Counted by triggers in the writer's transaction through private.use_quota, as the other
-- quotas (20261202071000_usage_quotas.sql): past the limit a 403 plan_limit_reached on
-- every path, and the write and its count roll back together; the counter row is locked
-- until the writer commits, so concurrent uploads at the limit queue on it and never
-- overshoot. Decreases are never refused, and a tenant already past a lowered limit only
-- cannot add more. GET /tenants/{id}/usage shows both (every limit but the per-minute
-- ones is a metric there).

alter table private.plans disable trigger check_plan_keys; -- every plan gains the keys at once
update private.plans set limits = limits || case id
  when 'starter' then '{"knowledge_bases": 0, "knowledge_bytes": 0}'::jsonb
  when 'pro' then '{"knowledge_bases": 20, "knowledge_bytes": 268435456}'::jsonb
  else '{"knowledge_bases": null, "knowledge_bytes": null}'::jsonb
end;
alter table private.plans enable trigger check_plan_keys;

create function private.count_knowledge() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_table_name = 'voice_knowledge_bases' then
    if tg_op = 'INSERT' then
      perform private.use_quota(new.tenant_id, 'knowledge_bases', 1);
    else
      perform private.use_quota(old.tenant_id, 'knowledge_bases', -1);
    end if;
  elsif tg_op = 'INSERT' then
    perform private.use_quota(new.tenant_id, 'knowledge_bytes', pg_catalog.octet_length(new.content));
  elsif tg_op = 'DELETE' then
    perform private.use_quota(old.tenant_id, 'knowledge_bytes', -pg_catalog.octet_length(old.content));
  else
    perform private.use_quota(new.tenant_id, 'knowledge_bytes',
      pg_catalog.octet_length(new.content) - pg_catalog.octet_length(old.content));
  end if;
  return null;
end;
$$;
revoke all on function private.count_knowledge() from public, anon, authenticated;
create trigger count_usage after insert or delete on public.voice_knowledge_bases
  for each row execute function private.count_knowledge();
create trigger count_usage after insert or delete or update of content on public.kb_documents
  for each row execute function private.count_knowledge();

-- What is there today.
insert into private.usage_counters (tenant_id, metric, period, used)
select tenant_id, 'knowledge_bases', date '1970-01-01', count(*) from public.voice_knowledge_bases group by tenant_id
on conflict (tenant_id, metric, period) do update set used = excluded.used;
insert into private.usage_counters (tenant_id, metric, period, used)
select tenant_id, 'knowledge_bytes', date '1970-01-01', sum(octet_length(content)) from public.kb_documents group by tenant_id
on conflict (tenant_id, metric, period) do update set used = excluded.used;
