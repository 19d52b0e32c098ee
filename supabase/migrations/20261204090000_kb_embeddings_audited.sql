-- Embedding writes are audited (issue 14). private.kb_set_embeddings changes what a
-- knowledge base answers (vector and hybrid search rank by the embeddings) yet left no
-- entry in the trail: kb_chunks is not audited (its rows are cut from the document's
-- audited content), and an embedding is a derived column the trail leaves out. A write
-- now records itself on its document, where the trail already holds the content:
--   * kb_documents.embedded_chunks: how many of the document's chunks have their
--     embedding (0 where the project has no vector search), kept by the write and reset
--     to 0 by a change of content (the chunks are cut again, without embeddings), in
--     the same row change as the content, so the trail shows both;
--   * kb_documents.embeddings_written_at: when embeddings were last written (or
--     cleared): every write changes it, so every write is an UPDATE of its document in
--     the trail, by the caller (their user, or the machine role), even one that replaces
--     embeddings with as many new ones.
-- Neither is writable by API roles (their update grant names title, source, format and
-- content), so the figures are the database's own.

alter table public.kb_documents
  add column embedded_chunks int not null default 0 check (embedded_chunks >= 0),
  add column embeddings_written_at timestamptz;
comment on column public.kb_documents.embedded_chunks is
  'How many of the document''s chunks have their embedding: set by private.kb_set_embeddings, 0 after a change of content.';
comment on column public.kb_documents.embeddings_written_at is
  'When private.kb_set_embeddings last wrote (or cleared) embeddings of the document''s chunks; null if never.';
-- Again, so the trail renders the new timestamp as it renders the others.
select private.enable_audit('public.kb_documents');

-- A content (or knowledge base) that really changes has its chunks cut again by
-- private.kb_document_chunks (the trigger kb_document_chunks_changed, same condition):
-- none of the new chunks has an embedding yet.
create function private.kb_document_embeddings_reset() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.embedded_chunks := 0;
  return new;
end;
$$;
revoke all on function private.kb_document_embeddings_reset() from public, anon;
create trigger kb_document_embeddings_reset before update of content, knowledge_base_id on public.kb_documents
  for each row
  when (old.content is distinct from new.content or old.knowledge_base_id is distinct from new.knowledge_base_id)
  execute function private.kb_document_embeddings_reset();

-- Redefined: as 20261203241000_kb_embeddings_review.sql, and the write recorded on its
-- document.
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
  v_embedded int;
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
  -- On the document, which this transaction holds (locked above): its count, and an
  -- entry in the trail by the caller.
  if v_written > 0 then
    execute 'select count(*)::int from public.kb_chunks k
             where k.tenant_id = $1 and k.document_id = $2 and k.embedding is not null'
      into v_embedded using p_tenant_id, p_document_id;
    update public.kb_documents d
    set embedded_chunks = v_embedded, embeddings_written_at = pg_catalog.now()
    where d.tenant_id = p_tenant_id and d.id = p_document_id;
  end if;
  return v_written;
end;
$$;
