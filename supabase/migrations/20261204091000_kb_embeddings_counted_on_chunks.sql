-- Embedding counts kept by the chunks, after review (issue 14;
-- 20261204090000_kb_embeddings_audited.sql):
--   * The service role writes every table (Supabase's grants), and writing
--     kb_chunks.embedding straight from a job (supabase-js `.from('kb_chunks').update`, or
--     SQL) is the common Supabase way of storing embeddings: such a write moved neither
--     the document's count nor left an entry in the trail. Statement triggers on
--     kb_chunks now keep `embedded_chunks` (and, for a write of embeddings,
--     `embeddings_written_at`) on the documents whose chunks' embeddings changed,
--     whoever changed them; private.kb_set_embeddings no longer does it itself. A write
--     of the embeddings already stored changes nothing and is no entry.
--   * Documents whose chunks had embeddings before 20261204090000 (hosted projects)
--     said 0: they are counted here, by private.kb_documents_recount_embeddings (an
--     operator's repair too). When those were written is not known:
--     embeddings_written_at stays null for them.
-- The document's updated_at moves with its count, as with any change of its row.
-- The triggers exist only where kb_chunks has its embedding column (the vector
-- extension); they are ALWAYS triggers, like the postings', so a load under
-- session_replication_role = replica keeps the counts too.

comment on column public.kb_documents.embedded_chunks is
  'How many of the document''s chunks have their embedding: kept by triggers on kb_chunks, 0 after a change of content.';
comment on column public.kb_documents.embeddings_written_at is
  'When embeddings of the document''s chunks were last written or cleared, by any writer; null if never (or only before 20261204090000).';

-- Counts the embedded chunks of the documents named (pairs of p_tenant_ids and
-- p_document_ids; all documents where null) and writes the count where it moved, or, with
-- p_written, writes it with embeddings_written_at (a write of embeddings: an entry even
-- when the count stays). Returns how many documents it wrote. plpgsql plans a statement
-- when it first runs it, so this exists everywhere and runs only where the embedding
-- column does. Not for API roles: run by the triggers below (as their owner), and by an
-- operator to repair counts after writing chunks with the triggers disabled.
create function private.kb_documents_recount_embeddings(
  p_tenant_ids uuid[] default null,
  p_document_ids uuid[] default null,
  p_written boolean default false
)
returns int
language plpgsql volatile
set search_path = ''
as $$
declare
  v_written int;
begin
  if private.kb_embedding_dimensions() is null then
    return 0;
  end if;
  with documents as (
    select t.tenant_id, t.document_id from unnest(p_tenant_ids, p_document_ids) t(tenant_id, document_id)
    where p_document_ids is not null
    union
    select k.tenant_id, k.document_id from public.kb_chunks k
    where p_document_ids is null and k.embedding is not null
    union
    select d.tenant_id, d.id from public.kb_documents d
    where p_document_ids is null and d.embedded_chunks > 0
  )
  update public.kb_documents d
  set embedded_chunks = c.n,
      embeddings_written_at = case when p_written then pg_catalog.now() else d.embeddings_written_at end
  from documents t
  cross join lateral (
    select count(*)::int as n from public.kb_chunks k
    where k.tenant_id = t.tenant_id and k.document_id = t.document_id and k.embedding is not null
  ) c
  where d.tenant_id = t.tenant_id and d.id = t.document_id and (p_written or d.embedded_chunks <> c.n);
  get diagnostics v_written = row_count;
  return v_written;
end;
$$;
revoke all on function private.kb_documents_recount_embeddings(uuid[], uuid[], boolean) from public, anon;

-- The statement triggers' function (one per event: a transition table serves one). A
-- definer: whoever may write kb_chunks (the service role; the definer
-- private.kb_document_chunks) has the count kept, though no API role may write
-- kb_documents' count.
create function private.kb_chunks_embeddings_counted() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_tenants uuid[];
  v_documents uuid[];
begin
  if tg_op = 'UPDATE' then
    -- Embeddings written or cleared: the documents of the chunks whose embedding is not
    -- what it was (a chunk moved to another document counts for both). Compared as text:
    -- with an empty search_path pgvector's = is not in reach, and its text is exact.
    select array_agg(x.tenant_id), array_agg(x.document_id) into v_tenants, v_documents
    from (
      select n.tenant_id, n.document_id
      from changed_new n join changed_old o on o.tenant_id = n.tenant_id and o.id = n.id
      where n.embedding::text is distinct from o.embedding::text or n.document_id <> o.document_id
      union
      select o.tenant_id, o.document_id
      from changed_new n join changed_old o on o.tenant_id = n.tenant_id and o.id = n.id
      where n.document_id <> o.document_id
    ) x;
  elsif tg_op = 'INSERT' then
    select array_agg(x.tenant_id), array_agg(x.document_id) into v_tenants, v_documents
    from (select distinct n.tenant_id, n.document_id from changed_new n where n.embedding is not null) x;
  else
    -- A document's new content deletes its chunks after its count went to 0 (nothing
    -- to write); a deleted document is gone.
    select array_agg(x.tenant_id), array_agg(x.document_id) into v_tenants, v_documents
    from (select distinct o.tenant_id, o.document_id from changed_old o where o.embedding is not null) x;
  end if;
  if v_documents is not null then
    perform private.kb_documents_recount_embeddings(v_tenants, v_documents, tg_op = 'UPDATE');
  end if;
  return null;
end;
$$;
revoke all on function private.kb_chunks_embeddings_counted() from public, anon;

do $embedding$
begin
  if private.kb_embedding_dimensions() is null then
    return;
  end if;
  create trigger embeddings_counted_on_update after update on public.kb_chunks
    referencing old table as changed_old new table as changed_new
    for each statement execute function private.kb_chunks_embeddings_counted();
  create trigger embeddings_counted_on_insert after insert on public.kb_chunks
    referencing new table as changed_new
    for each statement execute function private.kb_chunks_embeddings_counted();
  create trigger embeddings_counted_on_delete after delete on public.kb_chunks
    referencing old table as changed_old
    for each statement execute function private.kb_chunks_embeddings_counted();
  alter table public.kb_chunks enable always trigger embeddings_counted_on_update;
  alter table public.kb_chunks enable always trigger embeddings_counted_on_insert;
  alter table public.kb_chunks enable always trigger embeddings_counted_on_delete;
  -- The documents embedded before 20261204090000.
  perform private.kb_documents_recount_embeddings();
end;
$embedding$;

-- Redefined: as 20261203241000_kb_embeddings_review.sql again: the triggers above keep the
-- document's count and time for this write as for any other.
create or replace function private.kb_set_embeddings(p_tenant_id uuid, p_knowledge_base_id uuid, p_document_id uuid, p_items jsonb)
returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_dimensions int;
  v_item jsonb;
  v_index int;
  v_embedding jsonb;
  v_problem text;
  v_field text;
  v_norm2 numeric;
  v_max numeric;
  v_min numeric;
  v_seen uuid[] := '{}';
  v_id uuid;
  v_missing uuid[];
  v_written int;
begin
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not coalesce(p_tenant_id = any (private.tenant_ids('admin', true)) or private.is_platform_admin(), false) then
    raise exception 'permission denied to change the knowledge of this tenant' using errcode = '42501';
  end if;
  perform private.assert_feature(p_tenant_id, 'knowledge_base');
  perform 1 from public.kb_documents d
  where d.tenant_id = p_tenant_id and d.knowledge_base_id = p_knowledge_base_id and d.id = p_document_id
  for no key update;
  if not found then
    raise exception 'Document not found' using errcode = 'PT404', detail = jsonb_build_object('code', 'not_found');
  end if;
  v_dimensions := private.kb_embedding_dimensions();
  if v_dimensions is null then
    raise exception 'This project has no vector search (the vector extension is not installed); knowledge is searched by full text'
      using errcode = 'PT409', detail = jsonb_build_object('code', 'vector_search_unavailable');
  end if;
  if pg_catalog.jsonb_typeof(p_items) is distinct from 'array' then
    raise exception 'items must be a list' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details',
        jsonb_build_object('fields', jsonb_build_array(jsonb_build_object('field', 'items', 'message', 'must be a list'))));
  end if;

  for v_item, v_index in select e, (i - 1)::int from pg_catalog.jsonb_array_elements(p_items) with ordinality x(e, i) loop
    v_problem := null;
    v_field := pg_catalog.format('items.%s.chunk_id', v_index);
    if v_item ->> 'chunk_id' is null or v_item ->> 'chunk_id' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      v_problem := 'must be a chunk id';
    else
      v_id := (v_item ->> 'chunk_id')::uuid;
      if v_id = any (v_seen) then
        v_problem := 'appears twice';
      end if;
      v_seen := v_seen || v_id;
    end if;
    if v_problem is null then
      v_field := pg_catalog.format('items.%s.embedding', v_index);
      v_embedding := v_item -> 'embedding';
      if v_embedding is null then
        v_problem := 'is required (null clears the chunk''s embedding)';
      elsif pg_catalog.jsonb_typeof(v_embedding) = 'null' then
        null; -- clears the chunk's embedding
      elsif pg_catalog.jsonb_typeof(v_embedding) <> 'array' then
        v_problem := 'must be a list of numbers, or null';
      elsif v_dimensions > 0 and pg_catalog.jsonb_array_length(v_embedding) <> v_dimensions then
        v_problem := pg_catalog.format('must have %s dimensions, not %s', v_dimensions, pg_catalog.jsonb_array_length(v_embedding));
      elsif pg_catalog.jsonb_array_length(v_embedding) = 0 then
        v_problem := 'must not be empty';
      elsif exists (select 1 from pg_catalog.jsonb_array_elements(v_embedding) v where pg_catalog.jsonb_typeof(v) <> 'number') then
        v_problem := 'must hold numbers only';
      else
        -- Exactly, in numeric (a float8 sum of squares overflows past 1.3e154). pgvector
        -- keeps single precision: a value past 3.4e38 or below its smallest normal
        -- number fails the cast or is lost, and it sums the squares in single precision
        -- too, so they must stay below 3.4e38 and one must be a normal number (a vector
        -- whose squares all round to zero has no cosine distance: NaN).
        select max(abs(v::numeric)), min(abs(v::numeric)) filter (where v::numeric <> 0), sum(v::numeric * v::numeric)
        into v_max, v_min, v_norm2
        from pg_catalog.jsonb_array_elements(v_embedding) v;
        if v_max >= 3.4e38 then
          v_problem := 'values must be below 3.4e38 in magnitude (single precision)';
        elsif v_min < 1.2e-38 then
          v_problem := 'values must be 0 or at least 1.2e-38 in magnitude (single precision)';
        elsif v_norm2 >= 3.4e38 then
          v_problem := 'values are too large (the sum of their squares must stay below 3.4e38)';
        elsif v_max is null or v_max < 1.1e-19 then
          v_problem := 'must not be all zeros (nor so near zero that single precision loses its direction)';
        end if;
      end if;
    end if;
    if v_problem is not null then
      raise exception '% %', v_field, v_problem using errcode = 'PT422',
        detail = jsonb_build_object('code', 'validation_failed', 'details',
          jsonb_build_object('fields', jsonb_build_array(jsonb_build_object('field', v_field, 'message', v_problem))));
    end if;
  end loop;

  select array_agg(x.id order by x.i) into v_missing
  from unnest(v_seen) with ordinality x(id, i)
  where not exists (
    select 1 from public.kb_chunks k where k.tenant_id = p_tenant_id and k.document_id = p_document_id and k.id = x.id
  );
  if v_missing is not null then
    raise exception 'Some chunks are not the document''s (its content changed since they were read?): read its chunks again'
      using errcode = 'PT409', detail = jsonb_build_object('code', 'chunks_changed', 'details', jsonb_build_object('chunk_ids', v_missing));
  end if;

  execute
    'update public.kb_chunks k
     set embedding = case when pg_catalog.jsonb_typeof(i.e -> ''embedding'') = ''array''
       then (select array_agg(v::float8 order by o) from pg_catalog.jsonb_array_elements(i.e -> ''embedding'') with ordinality j(v, o))::real[]::extensions.vector
     end
     from pg_catalog.jsonb_array_elements($3) i(e)
     where k.tenant_id = $1 and k.document_id = $2 and k.id = (i.e ->> ''chunk_id'')::uuid'
    using p_tenant_id, p_document_id, p_items;
  get diagnostics v_written = row_count;
  return v_written;
end;
$$;
