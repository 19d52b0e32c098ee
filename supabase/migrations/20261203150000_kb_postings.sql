-- Knowledge search for one word without ranking every chunk that has it (issue 14).
--
-- A search ranks its matches with ts_rank and keeps the best few. For a word in a tenth
-- of 100,000 chunks, that read all 10,000 of them: each on its own heap page, ~1.5 µs a
-- page plus two ts_rank calls a row, p99 30 ms against a 20 ms target. GIN finds the
-- matches but keeps nothing to rank them by.
--
-- For a query of one word, nothing else is needed: ts_rank of a one-lexeme query is the
-- number of positions the lexeme has in the chunk, through a strictly increasing function
-- (every position weighs the same here: these vectors carry no weights), and the search
-- ranks by the greater of its two configurations' ranks, so by the greater of the two
-- counts. kb_postings keeps, per knowledge base, configuration and lexeme, each chunk with
-- that count, in an index ordered as the search ranks (count descending, then chunk id):
-- the best k of a knowledge base are its first k entries. The union of each knowledge
-- base's and each configuration's first k holds the best k overall (a chunk ahead of one
-- of them in the final order is ahead of it in that list too), and only those are read
-- and ranked as before. Any other query (two words, a phrase, a negation) ranks through
-- GIN as before.
--
-- Kept by triggers on kb_chunks (chunks are written only by their document's trigger;
-- deleting a document, a knowledge base or a tenant deletes its chunks, each through this
-- trigger). Keyed by tenant first, as every tenant's row: ids are unique only within a
-- tenant (another tenant may hold a knowledge base and chunks with the same ids; the
-- attack suites create such), so a key without it mixed two tenants' postings. No
-- foreign keys: a check per row would cost as much as the row; the chunk's own delete,
-- cascaded from its document, knowledge base or tenant, deletes its postings.

create table private.kb_postings (
  tenant_id uuid not null,
  knowledge_base_id uuid not null,
  config "char" not null check (config in ('e', 's')),  -- english, simple
  lexeme text not null,
  positions smallint not null check (positions > 0),
  chunk_id uuid not null
);
create unique index kb_postings_rank_idx
  on private.kb_postings (tenant_id, knowledge_base_id, config, lexeme, positions desc, chunk_id);
alter table private.kb_postings set (autovacuum_vacuum_scale_factor = 0.05);

-- A chunk's postings: one row per lexeme of each configuration.
create function private.kb_chunk_postings(
  p_tenant_id uuid, p_knowledge_base_id uuid, p_chunk_id uuid, p_english tsvector, p_simple tsvector
)
returns table (tenant_id uuid, knowledge_base_id uuid, config "char", lexeme text, positions smallint, chunk_id uuid)
language sql immutable
set search_path = ''
as $$
  select p_tenant_id, p_knowledge_base_id, 'e'::"char", u.lexeme, greatest(coalesce(pg_catalog.array_length(u.positions, 1), 1), 1)::smallint, p_chunk_id
  from pg_catalog.unnest(p_english) u
  union all
  select p_tenant_id, p_knowledge_base_id, 's'::"char", u.lexeme, greatest(coalesce(pg_catalog.array_length(u.positions, 1), 1), 1)::smallint, p_chunk_id
  from pg_catalog.unnest(p_simple) u;
$$;
revoke all on function private.kb_chunk_postings(uuid, uuid, uuid, tsvector, tsvector) from public, anon, authenticated;

create function private.kb_chunks_postings() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- Each of the old chunk's postings by its whole key: one index probe each, where the
  -- lexeme alone would walk every chunk that has it (10,000 for a broad word).
  if tg_op in ('UPDATE', 'DELETE') then
    delete from private.kb_postings p
    using private.kb_chunk_postings(old.tenant_id, old.knowledge_base_id, old.id, old.search_english, old.search_simple) o
    where p.tenant_id = o.tenant_id and p.knowledge_base_id = o.knowledge_base_id and p.config = o.config and p.lexeme = o.lexeme
      and p.positions = o.positions and p.chunk_id = o.chunk_id;
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    insert into private.kb_postings (tenant_id, knowledge_base_id, config, lexeme, positions, chunk_id)
    select * from private.kb_chunk_postings(new.tenant_id, new.knowledge_base_id, new.id, new.search_english, new.search_simple);
  end if;
  return null;
end;
$$;
revoke all on function private.kb_chunks_postings() from public, anon, authenticated;
create trigger postings after insert or delete or update of content, knowledge_base_id on public.kb_chunks
  for each row execute function private.kb_chunks_postings();

insert into private.kb_postings (tenant_id, knowledge_base_id, config, lexeme, positions, chunk_id)
select p.* from public.kb_chunks k
cross join lateral private.kb_chunk_postings(k.tenant_id, k.knowledge_base_id, k.id, k.search_english, k.search_simple) p;

-- The one lexeme of a query of one word, or null (no word, several, or an operator).
-- tsquery writes a lexeme quoted, its own quotes doubled and backslashes escaped; the
-- lexeme read back must match the query alone, or it is not taken (null: ranked by GIN).
create function private.tsquery_single_lexeme(q tsquery) returns text
language sql immutable
set search_path = ''
as $$
  select l from (
    select case when q is not null and pg_catalog.numnode(q) = 1 and q::text ~ '^''.*''$'
      then pg_catalog.replace(pg_catalog.replace(pg_catalog.substr(q::text, 2, pg_catalog.length(q::text) - 2), '''''', ''''), '\\', '\')
    end as l
  ) x
  where x.l is not null and pg_catalog.array_to_tsvector(array[x.l]) operator(pg_catalog.@@) q;
$$;
revoke all on function private.tsquery_single_lexeme(tsquery) from public, anon, authenticated;

-- Redefined: as 20261202200100_voice_knowledge_review.sql, and a query of one word in
-- each configuration (or none in one) ranks only the candidates its postings give.
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
          (select p.chunk_id from private.kb_postings p
           where p.tenant_id = p_tenant_id and p.knowledge_base_id = b.id and p.config = 'e' and p.lexeme = le
           order by p.positions desc, p.chunk_id limit v_limit)
          union all
          (select p.chunk_id from private.kb_postings p
           where p.tenant_id = p_tenant_id and p.knowledge_base_id = b.id and p.config = 's' and p.lexeme = ls
           order by p.positions desc, p.chunk_id limit v_limit)
        ) c
        where b.tenant_id = p_tenant_id and (p_knowledge_base_id is null or b.id = p_knowledge_base_id)
      ),
      best as materialized (
        select m.id, greatest(ts_rank(m.search_english, qe), ts_rank(m.search_simple, qs))::real as score
        from candidates x
        join public.kb_chunks m on m.tenant_id = p_tenant_id and m.id = x.chunk_id
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
