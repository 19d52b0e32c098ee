-- Embeddings through the API (issue 14). Where the `vector` extension exists (hosted
-- projects) kb_chunks has an embedding column and private.kb_search ranks by it, but
-- nothing outside SQL could write one or search by one. These are what the voice
-- function's routes run for it:
--   * private.kb_embedding_dimensions(): the embeddings' size where this project has the
--     column, null where it has not (the local embedded Postgres), so a route can say
--     which search runs and refuse an embedding it cannot keep.
--   * private.kb_chunks_of_document(): a document's chunks, with whether each has its
--     embedding yet, for whoever computes them (under RLS: the caller's own standing).
--   * private.kb_set_embeddings(): writes (or clears) the embeddings of a document's
--     chunks, all or nothing, by chunk id: a document whose content changed meanwhile
--     has new chunks, and embeddings computed from the old ones are refused (409
--     chunks_changed) rather than attached to text they do not describe.
--   * private.kb_search_for_call_with_embedding(): the provider's search during a call,
--     with the query's embedding.
-- The column exists only on hosted projects, so every statement naming it is dynamic.

create function private.kb_embedding_dimensions() returns int
language sql stable
set search_path = ''
as $$
  -- atttypmod: the declared size; -1 for a column declared without one (any size).
  select a.atttypmod from pg_catalog.pg_attribute a
  where a.attrelid = 'public.kb_chunks'::regclass and a.attname = 'embedding' and not a.attisdropped
$$;
revoke all on function private.kb_embedding_dimensions() from public, anon;
grant execute on function private.kb_embedding_dimensions() to authenticated, service_role;

-- A document's chunks in order, after an ordinal, with whether each has an embedding
-- (never, where the column does not exist); p_embedded filters on it. An invoker: the
-- kb_chunks select policy decides what the caller sees.
create function private.kb_chunks_of_document(
  p_tenant_id uuid,
  p_document_id uuid,
  p_after int default null,
  p_limit int default 100,
  p_embedded boolean default null
)
returns table (id uuid, ordinal int, content text, embedded boolean)
language plpgsql stable
set search_path = ''
as $$
declare
  -- Up to 501: a route asks for one more than its page (500 at most) to know whether
  -- another follows.
  v_limit int := least(greatest(coalesce(p_limit, 100), 1), 501);
begin
  if private.kb_embedding_dimensions() is null then
    if p_embedded then
      return;
    end if;
    return query
      select k.id, k.ordinal, k.content, false
      from public.kb_chunks k
      where k.tenant_id = p_tenant_id and k.document_id = p_document_id and k.ordinal > coalesce(p_after, -1)
      order by k.ordinal
      limit v_limit;
    return;
  end if;
  return query execute
    'select k.id, k.ordinal, k.content, k.embedding is not null
     from public.kb_chunks k
     where k.tenant_id = $1 and k.document_id = $2 and k.ordinal > $3
       and ($4::boolean is null or (k.embedding is not null) = $4)
     order by k.ordinal
     limit $5'
    using p_tenant_id, p_document_id, coalesce(p_after, -1), p_embedded, v_limit;
end;
$$;
revoke all on function private.kb_chunks_of_document(uuid, uuid, int, int, boolean) from public, anon;
grant execute on function private.kb_chunks_of_document(uuid, uuid, int, int, boolean) to authenticated, service_role;

-- Writes the embeddings of a document's chunks: p_items is a JSON array of
-- {"chunk_id": uuid, "embedding": [numbers] | null} (null clears one). All or nothing:
--   * 42501 for an API caller who may not change the tenant's documents (the kb_documents
--     update policy's standing: an admin of a writable tenant, a platform admin), before
--     anything about the tenant is read; machine paths (service_role) may;
--   * 403 feature_not_in_plan without knowledge_base;
--   * 404 for a document that is not in that knowledge base of the tenant;
--   * 409 vector_search_unavailable where the project has no embedding column;
--   * 422 naming the item (items[i].chunk_id, items[i].embedding) for a repeated chunk,
--     a wrong size, a value that is not a number, or a vector without a cosine distance
--     (all zeros, or past single precision: what kb_search_in_tenant refuses to rank by);
--   * 409 chunks_changed with the ids that are not the document's chunks (any more).
-- The document is share-locked first: its content cannot be re-chunked between the
-- check of the ids and the write. Returns how many chunks were written.
create function private.kb_set_embeddings(p_tenant_id uuid, p_knowledge_base_id uuid, p_document_id uuid, p_items jsonb)
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
  v_norm2 float8;
  v_max float8;
  v_seen uuid[] := '{}';
  v_id uuid;
  v_missing uuid[];
  v_written int;
begin
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not (p_tenant_id = any (private.tenant_ids('admin', true)) or private.is_platform_admin()) then
    raise exception 'permission denied to change the knowledge of this tenant' using errcode = '42501';
  end if;
  perform private.assert_feature(p_tenant_id, 'knowledge_base');
  perform 1 from public.kb_documents d
  where d.tenant_id = p_tenant_id and d.knowledge_base_id = p_knowledge_base_id and d.id = p_document_id
  for share;
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
    v_field := pg_catalog.format('items[%s].chunk_id', v_index);
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
      v_field := pg_catalog.format('items[%s].embedding', v_index);
      v_embedding := v_item -> 'embedding';
      if v_embedding is null or pg_catalog.jsonb_typeof(v_embedding) = 'null' then
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
        -- pgvector stores single precision and sums the squares in it (at most 3.4e38).
        select max(abs(v::float8)), sum(v::float8 * v::float8) into v_max, v_norm2
        from pg_catalog.jsonb_array_elements(v_embedding) v;
        if v_max >= 3.4e38 or v_norm2 >= 3.4e38 then
          v_problem := 'values are too large (the sum of their squares must stay below 3.4e38)';
        elsif not (v_norm2 > 0) then
          v_problem := 'must not be all zeros';
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
revoke all on function private.kb_set_embeddings(uuid, uuid, uuid, jsonb) from public, anon;
grant execute on function private.kb_set_embeddings(uuid, uuid, uuid, jsonb) to authenticated, service_role;

-- The provider's search during a call, with the query's embedding (searched by it where
-- the project has the column: private.kb_search_in_tenant decides). As
-- private.kb_search_for_call: nothing for a deleted or unknown tenant, 403 without
-- knowledge_base. The call path's own connection runs it, no API role.
create function private.kb_search_for_call_with_embedding(
  p_tenant_id uuid,
  p_query text,
  p_knowledge_base_id uuid,
  p_limit int,
  p_embedding real[]
)
returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
language plpgsql stable
set search_path = ''
as $$
declare
  v_status text;
begin
  select t.status into v_status from public.tenants t where t.id = p_tenant_id;
  if v_status is null or v_status = 'deleted' then
    return;
  end if;
  perform private.assert_feature(p_tenant_id, 'knowledge_base');
  return query select * from private.kb_search_in_tenant(p_tenant_id, p_query, p_knowledge_base_id, p_limit, p_embedding);
end;
$$;
revoke all on function private.kb_search_for_call_with_embedding(uuid, text, uuid, int, real[]) from public, anon, authenticated;

-- Redefined (20261202160000_voice_events_tenant_state.sql): the same search without an
-- embedding, kept in one place.
create or replace function private.kb_search_for_call(p_tenant_id uuid, p_query text, p_knowledge_base_id uuid, p_limit int)
returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
language sql stable
set search_path = ''
as $$
  select * from private.kb_search_for_call_with_embedding(p_tenant_id, p_query, p_knowledge_base_id, p_limit, null)
$$;
