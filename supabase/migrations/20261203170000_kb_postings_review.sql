-- Knowledge postings, after review (issue 14; 20261203150000_kb_postings.sql):
--
-- * The fast path took the postings on trust: a write that skips the row trigger (a
--   TRUNCATE, a session in replica mode as restores and logical replication run, a
--   disabled trigger) left postings of chunks gone, which then took candidates' places,
--   or came back as answers with score 0 once another chunk took the id. A candidate
--   must now match the query; TRUNCATE empties the postings with the chunks; the trigger
--   fires in replica mode too (the postings are derived: a subscriber keeps its own); and
--   a chunk written again under an id whose postings were left is not refused.
-- * An update of a chunk's id or tenant moved it without its postings: the trigger now
--   watches every column its key is made of.
-- * private.tsquery_single_lexeme spelt the backslash as '\' and '', which parse as
--   meant only with standard_conforming_strings on; chr(92) is one in any session.
--
-- The exactness of the fast path rests on the chunks' vectors having no weights (ts_rank
-- of one word is then a function of its count of positions alone):
-- tests/functions/voice-kb-ranking.test.ts fails when a weight appears in them.

-- Redefined: as 20261203150000_kb_postings.sql, a chunk whose postings are there already
-- keeps them.
create or replace function private.kb_chunks_postings() returns trigger
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
    select * from private.kb_chunk_postings(new.tenant_id, new.knowledge_base_id, new.id, new.search_english, new.search_simple)
    on conflict do nothing;
  end if;
  return null;
end;
$$;

drop trigger postings on public.kb_chunks;
create trigger postings after insert or delete or update of content, knowledge_base_id, id, tenant_id on public.kb_chunks
  for each row execute function private.kb_chunks_postings();
alter table public.kb_chunks enable always trigger postings;

create function private.kb_chunks_truncated() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  truncate private.kb_postings;
  return null;
end;
$$;
revoke all on function private.kb_chunks_truncated() from public, anon, authenticated;
create trigger postings_truncated after truncate on public.kb_chunks
  for each statement execute function private.kb_chunks_truncated();
alter table public.kb_chunks enable always trigger postings_truncated;

-- Redefined: as 20261203150000_kb_postings.sql, the backslash as chr(92).
create or replace function private.tsquery_single_lexeme(q tsquery) returns text
language sql immutable
set search_path = ''
as $$
  select l from (
    select case when q is not null and pg_catalog.numnode(q) = 1 and q::text ~ '^''.*''$'
      then pg_catalog.replace(pg_catalog.replace(pg_catalog.substr(q::text, 2, pg_catalog.length(q::text) - 2), '''''', ''''),
                              pg_catalog.chr(92) || pg_catalog.chr(92), pg_catalog.chr(92))
    end as l
  ) x
  where x.l is not null and pg_catalog.array_to_tsvector(array[x.l]) operator(pg_catalog.@@) q;
$$;

-- Redefined: as 20261203150000_kb_postings.sql, a candidate must match the query.
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
