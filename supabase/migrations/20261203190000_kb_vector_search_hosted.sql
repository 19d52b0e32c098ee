-- Knowledge search by embedding as hosted projects run it (issue 14; the search of
-- 20261203180000_kb_postings_shared.sql). Hosted projects have the `vector` extension, so
-- there kb_chunks has `embedding` and its HNSW index (20261202090000); the local
-- embedded Postgres has neither, and tests/deploy/hosted-vector.test.ts now runs this
-- half on PGlite with pgvector 0.8:
--   * An HNSW scan returns the nearest chunks of every tenant (hnsw.ef_search, 40) and
--     the tenant filter applies after it: where the planner chose the index, a tenant
--     whose chunks were not among those 40 got fewer than its best chunks, or none
--     (shown by the test: 0 of 5). pgvector 0.8's iterative scan (strict_order) goes on
--     scanning until the limit is met; set for the statement only, where it exists.
--   * An embedding of the wrong size or with a non-finite value is refused up front
--     (22023, saying which), not by pgvector mid-scan.
-- And the one-word path reads a shared list once when both configurations give the same
-- lexeme (it was read twice, harmlessly).

-- Redefined: as 20261203180000_kb_postings_shared.sql, with the embedding checked, the
-- iterative HNSW scan, and the distinct lists.
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
  ls text;
  le text;
  v_dimensions int;
  v_iterative text;
begin
  select a.atttypmod into v_dimensions
  from pg_catalog.pg_attribute a
  where a.attrelid = 'public.kb_chunks'::regclass and a.attname = 'embedding' and not a.attisdropped;
  if p_embedding is not null and v_dimensions is not null then
    -- A wrong embedding is the caller's mistake, said as such (pgvector would answer
    -- "different vector dimensions" from deep in the scan, or "NaN not allowed").
    if coalesce(pg_catalog.array_length(p_embedding, 1), 0) <> v_dimensions or pg_catalog.array_ndims(p_embedding) <> 1 then
      raise exception 'embedding must have % dimensions, not %', v_dimensions, coalesce(pg_catalog.array_length(p_embedding, 1), 0)
        using errcode = '22023';
    end if;
    if exists (select 1 from pg_catalog.unnest(p_embedding) x where x is null or x in ('NaN'::real, 'Infinity'::real, '-Infinity'::real)) then
      raise exception 'embedding values must be finite numbers' using errcode = '22023';
    end if;
    -- The HNSW index holds every tenant's chunks: a scan of it finds the nearest ones of
    -- all tenants (ef_search, 40) and the tenant filter then drops the others', so a
    -- tenant whose chunks are not among them got fewer than its best chunks, or none.
    -- pgvector 0.8's iterative scan goes on until the limit is met (or
    -- hnsw.max_scan_tuples), in exact distance order. Set for this statement only,
    -- where pgvector has it: its library is loaded first (a vector's input), so an
    -- older pgvector's reserved prefix is not set blindly.
    execute 'select $1::text::extensions.vector' using '[0]';
    v_iterative := pg_catalog.current_setting('hnsw.iterative_scan', true);
    if v_iterative is not null then
      perform pg_catalog.set_config('hnsw.iterative_scan', 'strict_order', true);
    end if;
    return query execute
      'select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content,
              (1 - (k.embedding operator(extensions.<=>) $3::text::extensions.vector))::real
       from public.kb_chunks k
       join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
       where k.tenant_id = $1 and ($2::uuid is null or k.knowledge_base_id = $2) and k.embedding is not null
       order by k.embedding operator(extensions.<=>) $3::text::extensions.vector
       limit $4'
      using p_tenant_id, p_knowledge_base_id, '[' || array_to_string(p_embedding, ',') || ']', v_limit;
    if v_iterative is not null then
      perform pg_catalog.set_config('hnsw.iterative_scan', v_iterative, true);
    end if;
    return;
  end if;
  qs := websearch_to_tsquery('simple'::regconfig, coalesce(p_query, ''));
  qe := websearch_to_tsquery('english'::regconfig, coalesce(p_query, ''));
  -- querytree: the part of a query an index can look for; 'T' when nothing (negations
  -- only). Null matches nothing, and its rank counts for nothing in greatest().
  if pg_catalog.querytree(qs) in ('T', '') then qs := null; end if;
  if pg_catalog.querytree(qe) in ('T', '') then qe := null; end if;
  if qs is null and qe is null then
    return;
  end if;
  ls := private.tsquery_single_lexeme(qs);
  le := private.tsquery_single_lexeme(qe);
  if (qs is null or ls is not null) and (qe is null or le is not null) then
    return query
      with candidates as materialized (
        select distinct c.chunk_id
        from public.voice_knowledge_bases b
        cross join lateral (
          -- distinct: a word both configurations give alike has one shared list, read once.
          select x.chunk_id from (
            select distinct v.config, v.lexeme
            from (values ('e'::"char", le), ('b'::"char", le), ('s'::"char", ls), ('b'::"char", ls)) v(config, lexeme)
          ) l
          cross join lateral (
            select p.chunk_id from private.kb_postings p
            where p.tenant_id = p_tenant_id and p.knowledge_base_id = b.id and p.config = l.config and p.lexeme = l.lexeme
            order by p.positions desc, p.chunk_id limit v_limit
          ) x
        ) c
        where b.tenant_id = p_tenant_id and (p_knowledge_base_id is null or b.id = p_knowledge_base_id)
      ),
      best as materialized (
        select m.id, greatest(ts_rank(m.search_english, qe), ts_rank(m.search_simple, qs))::real as score
        from candidates x
        join public.kb_chunks m on m.tenant_id = p_tenant_id and m.id = x.chunk_id
        -- A candidate is a match: a posting left by a write that skipped the trigger
        -- is never an answer.
        where m.search_english @@ qe or m.search_simple @@ qs
        order by score desc, m.id
        limit v_limit
      )
      select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content, b.score
      from best b
      join public.kb_chunks k on k.tenant_id = p_tenant_id and k.id = b.id
      join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
      order by b.score desc, k.id;
    return;
  end if;
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
