-- Knowledge postings once for both configurations where they agree (issue 14;
-- 20261203150000_kb_postings.sql, 20261203170000_kb_postings_review.sql).
--
-- A chunk had a posting per lexeme of its `english` vector and another per lexeme of
-- its `simple` one: 3.8× the chunks' size in the voice bench (632 MB for 165 MB), and a
-- document's upload ~10× slower, ~80 index entries a chunk each way. Most words are the
-- same lexeme in both (those the stemmer leaves alone, numbers, names), with the same
-- count of positions: such a pair is now one posting, config 'b' (both).
--
-- A configuration's list for a word is then its own postings and the shared ones, each
-- in the index's order: the search reads the best k of each of the four (english, both
-- under the english lexeme; simple, both under the simple one), per knowledge base, and
-- the best k of a list are among the best k of its two parts, so the candidates still
-- hold the best k overall.
--
-- The postings are written again from the chunks: the trigger deletes a chunk's postings
-- by what this function gives now, so postings written under the old one would outlive
-- their chunks.

alter table private.kb_postings drop constraint kb_postings_config_check;
alter table private.kb_postings add constraint kb_postings_config_check check (config in ('e', 's', 'b'));

-- Redefined: as 20261203150000_kb_postings.sql, a lexeme the two configurations give with
-- the same count of positions as one posting, 'b'.
create or replace function private.kb_chunk_postings(
  p_tenant_id uuid, p_knowledge_base_id uuid, p_chunk_id uuid, p_english tsvector, p_simple tsvector
)
returns table (tenant_id uuid, knowledge_base_id uuid, config "char", lexeme text, positions smallint, chunk_id uuid)
language sql immutable
set search_path = ''
as $$
  with e as (
    select u.lexeme, greatest(coalesce(pg_catalog.array_length(u.positions, 1), 1), 1)::smallint as n
    from pg_catalog.unnest(p_english) u
  ), s as (
    select u.lexeme, greatest(coalesce(pg_catalog.array_length(u.positions, 1), 1), 1)::smallint as n
    from pg_catalog.unnest(p_simple) u
  )
  select p_tenant_id, p_knowledge_base_id, case when s.lexeme is null then 'e' else 'b' end::"char", e.lexeme, e.n, p_chunk_id
  from e left join s on s.lexeme = e.lexeme and s.n = e.n
  union all
  select p_tenant_id, p_knowledge_base_id, 's'::"char", s.lexeme, s.n, p_chunk_id
  from s
  where not exists (select 1 from e where e.lexeme = s.lexeme and e.n = s.n);
$$;

truncate private.kb_postings;
insert into private.kb_postings (tenant_id, knowledge_base_id, config, lexeme, positions, chunk_id)
select p.* from public.kb_chunks k
cross join lateral private.kb_chunk_postings(k.tenant_id, k.knowledge_base_id, k.id, k.search_english, k.search_simple) p;

-- Redefined: as 20261203170000_kb_postings_review.sql, the candidates from the four lists.
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
          select x.chunk_id from (values ('e'::"char", le), ('b'::"char", le), ('s'::"char", ls), ('b'::"char", ls)) l(config, lexeme)
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
