-- Knowledge search for words OR'd, its chunks with two or more of the words ranked as
-- they are found (issue 14; 20261203270000_kb_search_any_of_words.sql).
--
-- The search found those chunks through GIN, kept their ids only, and read each again by
-- its id to rank it: for two broad words found together in ~1,430 of 100,000 chunks, as
-- many index probes more, p99 19.7 ms in the voice bench against a 20 ms target. Their
-- rows are now ranked as the bitmap scan reads them; the heads of the words' postings
-- lists are still read by id, once each.

-- Redefined: as 20261203270000_kb_search_any_of_words.sql, the chunks with two or more of
-- the words ranked as found.
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
  ls text[];
  le text[];
  ps tsquery;
  pe tsquery;
  v_dimensions int;
  v_iterative text;
  v_norm2 float8;
  v_max float8;
begin
  if p_embedding is not null then
    select a.atttypmod into v_dimensions
    from pg_catalog.pg_attribute a
    where a.attrelid = 'public.kb_chunks'::regclass and a.attname = 'embedding' and not a.attisdropped;
  end if;
  if v_dimensions is not null then
    -- A wrong embedding is the caller's mistake, said as such (pgvector would answer
    -- "different vector dimensions" from deep in the scan, or "NaN not allowed"; a zero
    -- or overflowing vector has no cosine distance, NaN, and ranked anywhere).
    if pg_catalog.array_ndims(p_embedding) is distinct from 1 then
      raise exception 'embedding must be a list of numbers (an array of one dimension)' using errcode = '22023';
    end if;
    -- typmod -1: a column without a declared size takes any.
    if v_dimensions > 0 and pg_catalog.array_length(p_embedding, 1) <> v_dimensions then
      raise exception 'embedding must have % dimensions, not %', v_dimensions, pg_catalog.array_length(p_embedding, 1)
        using errcode = '22023';
    end if;
    if exists (select 1 from pg_catalog.unnest(p_embedding) x where x is null or x in ('NaN'::real, 'Infinity'::real, '-Infinity'::real)) then
      raise exception 'embedding values must be finite numbers' using errcode = '22023';
    end if;
    -- pgvector sums the squares in single precision (at most 3.4e38), where a square
    -- below its smallest number rounds to zero: a vector whose squares all do has no
    -- direction either (every distance NaN). Refused, as private.kb_set_embeddings
    -- refuses it, when no value reaches 1.1e-19 (no square a normal single-precision
    -- number): a little more than those whose squares all round to zero.
    select sum(x::float8 * x::float8), max(abs(x::float8)) into v_norm2, v_max from pg_catalog.unnest(p_embedding) x;
    if not (v_norm2 > 0) then
      raise exception 'embedding must not be all zeros' using errcode = '22023';
    end if;
    if v_norm2 >= 3.4e38 then
      raise exception 'embedding values are too large (the sum of their squares must stay below 3.4e38)' using errcode = '22023';
    end if;
    if v_max < 1.1e-19 then
      raise exception 'embedding is so near zero that single precision loses its direction (no value of 1.1e-19 or more)'
        using errcode = '22023';
    end if;
    -- The HNSW index holds every tenant's chunks: a scan of it finds the nearest ones of
    -- all tenants (hnsw.ef_search, 40) and the tenant filter drops the others' after it,
    -- so a tenant whose chunks were not among them got fewer than its best, or none.
    -- pgvector 0.8's iterative scan goes on until the limit is met or
    -- hnsw.max_scan_tuples (20,000) are read. In relaxed order: strict order skips a tuple
    -- nearer than the last one the index returned, and the tuples returned include other
    -- tenants', so a tenant's chunk found in a later batch was dropped; the candidates are
    -- sorted again below instead. Set for this statement only, where pgvector has it:
    -- its library is loaded first (a vector's input), every time: a setting read before
    -- the load may be a placeholder (set for the role, the database or the session before
    -- any vector was used), which the load then removes (pgvector before 0.8 reserves
    -- the prefix) or resets (0.8, an invalid value), and restoring it failed the search.
    execute 'select $1::extensions.vector' using '{0}'::real[];
    v_iterative := pg_catalog.current_setting('hnsw.iterative_scan', true);
    if v_iterative is not null then
      perform pg_catalog.set_config('hnsw.iterative_scan', 'relaxed_order', true);
    end if;
    -- The nearest ids by the index (materialized, so the order by the distance alone is
    -- the index's), then sorted exactly, ties by id, and read after the limit.
    return query execute
      'with nearest as materialized (
         select k.id, k.embedding operator(extensions.<=>) $3::extensions.vector as distance
         from public.kb_chunks k
         where k.tenant_id = $1 and ($2::uuid is null or k.knowledge_base_id = $2) and k.embedding is not null
         order by distance
         limit $4
       )
       select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content, (1 - n.distance)::real
       from nearest n
       join public.kb_chunks k on k.tenant_id = $1 and k.id = n.id
       join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
       order by n.distance, k.id'
      using p_tenant_id, p_knowledge_base_id, p_embedding, v_limit;
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
  ls := private.tsquery_any_lexemes(qs);
  le := private.tsquery_any_lexemes(qe);
  if (qs is null or ls is not null) and (qe is null or le is not null) then
    -- Chunks with two or more of a configuration's words (null for a word alone: none).
    ps := private.tsquery_any_two(ls);
    pe := private.tsquery_any_two(le);
    return query
      with heads as materialized (
        -- distinct: a chunk at the head of several lists is read once.
        select distinct c.chunk_id
        from public.voice_knowledge_bases b
        cross join lateral (
          -- distinct: a word both configurations give alike has one shared list, read once.
          select x.chunk_id from (
            select distinct v.config, v.lexeme
            from (
              select c.config, w.lexeme from pg_catalog.unnest(le) w(lexeme), (values ('e'::"char"), ('b'::"char")) c(config)
              union all
              select c.config, w.lexeme from pg_catalog.unnest(ls) w(lexeme), (values ('s'::"char"), ('b'::"char")) c(config)
            ) v
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
        select c.id, c.score
        from (
          select m.id, m.score
          from heads x
          -- One probe per head whatever the estimates (OFFSET 0 keeps the subquery
          -- apart): as a join, a few more heads estimated made it a hash join over a
          -- scan of every chunk of the tenant.
          cross join lateral (
            select m.id, greatest(ts_rank(m.search_english, qe), ts_rank(m.search_simple, qs))::real as score
            from public.kb_chunks m
            where m.tenant_id = p_tenant_id and m.id = x.chunk_id
              -- A head is a match: a posting left by a write that skipped the trigger is
              -- never an answer.
              and (m.search_english @@ qe or m.search_simple @@ qs)
            offset 0
          ) m
          union
          -- The chunks with two or more of the words, ranked as GIN hands their rows over
          -- (each read once; the same chunk among the heads has the same score).
          select m.id, greatest(ts_rank(m.search_english, qe), ts_rank(m.search_simple, qs))::real
          from public.kb_chunks m
          where (pe is not null or ps is not null)
            and m.tenant_id = p_tenant_id
            and (p_knowledge_base_id is null or m.knowledge_base_id = p_knowledge_base_id)
            and (m.search_english @@ pe or m.search_simple @@ ps)
        ) c
        order by c.score desc, c.id
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
