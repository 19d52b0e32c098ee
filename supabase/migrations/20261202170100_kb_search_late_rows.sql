-- Knowledge search (issue 14, speed): the same chunks in the same order, cheaper for a
-- word that many chunks share. Measured over 100,000 chunks of one tenant, a word in a
-- tenth of them (10,000 matches), one client: fetching the matches costs ~12 ms of the
-- server's time, the two ranks ~5 ms, and the rest of the old ~34 ms went to sorting
-- whole rows (content and both tsvectors) and joining every match to its document before
-- the limit. Two changes:
--
-- * Late rows: rank and sort only (id, score), keep the best p_limit, then read those
--   chunks and their documents. Exact: every chunk has its document (foreign key), so
--   the join after the limit drops none of the best.
-- * A custom plan for every call (plan_cache_mode): after five calls PL/pgSQL's cache
--   switched to a generic plan that also scanned the tenant's whole kb_chunks_kb_idx
--   (all its chunks) on every search; a narrow word's search went from ~1.7 to ~6.3 ms.
--
-- An exact search that ranks only some matches needs a postings table with a rank per
-- (chunk, word): prototyped, 3.6× the chunks' storage and 4× their write time, for
-- single-word queries only. Not done; see the README's benchmark notes.

-- Redefined: as 20261202090500_voice_search_under_rls.sql, with late rows and a custom plan.
create or replace function private.kb_search_in_tenant(
  p_tenant_id uuid,
  p_query text,
  p_knowledge_base_id uuid default null,
  p_limit int default 5,
  p_embedding real[] default null
)
returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
language plpgsql stable
set search_path = ''
set plan_cache_mode = force_custom_plan
as $$
declare
  v_limit int := least(greatest(coalesce(p_limit, 5), 1), 50);
  qs tsquery;
  qe tsquery;
begin
  if p_embedding is not null and exists (
    select 1 from pg_catalog.pg_attribute a
    where a.attrelid = 'public.kb_chunks'::regclass and a.attname = 'embedding' and not a.attisdropped
  ) then
    return query execute
      'select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content,
              (1 - (k.embedding operator(extensions.<=>) $3::text::extensions.vector))::real
       from public.kb_chunks k
       join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
       where k.tenant_id = $1 and ($2::uuid is null or k.knowledge_base_id = $2) and k.embedding is not null
       order by k.embedding operator(extensions.<=>) $3::text::extensions.vector
       limit $4'
      using p_tenant_id, p_knowledge_base_id, '[' || array_to_string(p_embedding, ',') || ']', v_limit;
    return;
  end if;
  qs := websearch_to_tsquery('simple'::regconfig, coalesce(p_query, ''));
  qe := websearch_to_tsquery('english'::regconfig, coalesce(p_query, ''));
  return query
    with best as materialized (
      select m.id, greatest(ts_rank(m.search_english, qe), ts_rank(m.search_simple, qs))::real as score
      from public.kb_chunks m
      where m.tenant_id = p_tenant_id
        and (p_knowledge_base_id is null or m.knowledge_base_id = p_knowledge_base_id)
        and (m.search_english @@ qe or m.search_simple @@ qs)
      order by score desc, m.id
      limit v_limit
    )
    select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content, b.score
    from best b
    join public.kb_chunks k on k.tenant_id = p_tenant_id and k.id = b.id
    join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
    order by b.score desc, k.id;
end;
$$;
