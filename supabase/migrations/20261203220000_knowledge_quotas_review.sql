-- The knowledge quotas after review (issue 14; 20261203210000_knowledge_quotas.sql):
--
-- * The bytes bound too little: a document of one character counted 1 byte while it
--   stores a row, a chunk with two tsvectors, their index entries, postings and an audit
--   row, with a title (200 characters at most) and a source (2,000) — 256 MiB allowed
--   millions of documents. A new limit, knowledge_documents (starter 0, pro 10,000,
--   enterprise no limit), bounds what each document costs beyond its content, the
--   title and source included; knowledge_bytes stays the content's, so a downgraded
--   tenant may still retitle its documents (editing is never refused for the plan).
-- * A document's count ran before its chunks were written (after-row triggers fire in
--   name order: count_usage before kb_document_chunks), so the tenant's counter row,
--   locked until commit, was held while the chunks and their postings were written, and
--   a tenant's uploads waited on each other for all of it. It runs last now
--   (zz_count_usage), after the chunks and after the foreign keys' cascades.
-- * A TRUNCATE of the documents or the knowledge bases (the owner's, outside the API)
--   left the counters as they were: it now clears them.
-- * A tenant given the knowledge_base feature over a plan without it (starter's 0 and 0)
--   was refused every new knowledge base and document from 20261203210000 on: such
--   tenants get no bound on the three metrics, as before it, for an operator to set.
--
-- Lock order, for code that writes knowledge in one transaction: a document's counters
-- (knowledge_documents, then knowledge_bytes), then knowledge_bases. Deleting a knowledge
-- base takes them in that order (its documents go first, by its foreign key's cascade);
-- creating one and adding documents to it in the same transaction takes the reverse,
-- and can deadlock with a deletion in the same tenant. The routes do each in a
-- transaction of its own.

alter table private.plans disable trigger check_plan_keys; -- every plan gains the key at once
update private.plans set limits = limits || jsonb_build_object('knowledge_documents',
  case id when 'starter' then to_jsonb(0) when 'pro' then to_jsonb(10000) else 'null'::jsonb end);
alter table private.plans enable trigger check_plan_keys;

-- Redefined: as 20261203210000_knowledge_quotas.sql, and each document against
-- knowledge_documents.
create or replace function private.count_knowledge() returns trigger
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
    perform private.use_quota(new.tenant_id, 'knowledge_documents', 1);
    perform private.use_quota(new.tenant_id, 'knowledge_bytes', pg_catalog.octet_length(new.content));
  elsif tg_op = 'DELETE' then
    perform private.use_quota(old.tenant_id, 'knowledge_documents', -1);
    perform private.use_quota(old.tenant_id, 'knowledge_bytes', -pg_catalog.octet_length(old.content));
  else
    perform private.use_quota(new.tenant_id, 'knowledge_bytes',
      pg_catalog.octet_length(new.content) - pg_catalog.octet_length(old.content));
  end if;
  return null;
end;
$$;

drop trigger count_usage on public.kb_documents;
create trigger zz_count_usage after insert or delete or update of content on public.kb_documents
  for each row execute function private.count_knowledge();

-- A TRUNCATE empties every tenant's table at once: their counters go with it.
create function private.count_knowledge_truncated() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from private.usage_counters u
  where u.metric in ('knowledge_documents', 'knowledge_bytes')
     or (tg_table_name = 'voice_knowledge_bases' and u.metric = 'knowledge_bases');
  return null;
end;
$$;
revoke all on function private.count_knowledge_truncated() from public, anon, authenticated;
create trigger count_usage_truncated after truncate on public.kb_documents
  for each statement execute function private.count_knowledge_truncated();
create trigger count_usage_truncated after truncate on public.voice_knowledge_bases
  for each statement execute function private.count_knowledge_truncated();

-- The documents there today.
insert into private.usage_counters (tenant_id, metric, period, used)
select tenant_id, 'knowledge_documents', date '1970-01-01', count(*) from public.kb_documents group by tenant_id
on conflict (tenant_id, metric, period) do update set used = excluded.used;

-- Tenants given knowledge_base over their plan keep no bound, as before 20261203210000.
update private.tenant_plan_overrides o
set limits = '{"knowledge_bases": null, "knowledge_documents": null, "knowledge_bytes": null}'::jsonb || o.limits
from public.tenants t
join private.plans p on p.id = t.plan
where t.id = o.tenant_id
  and (o.features -> 'knowledge_base') = 'true'::jsonb and (p.features -> 'knowledge_base') = 'false'::jsonb;
