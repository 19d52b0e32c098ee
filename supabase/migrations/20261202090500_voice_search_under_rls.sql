-- Knowledge and transcript search at speed for people (issue 14). Under RLS a query's
-- own conditions that are not leakproof — the full-text match `@@` among them — cannot
-- be index conditions: they must wait until the policy has passed each row, so an
-- invoker search walked every chunk (or transcript segment) of the tenant and matched
-- them one by one (tests/schema/endpoint-plans.test.ts found it). These searches now
-- check the caller's standing in the tenant once, then search as the owner through the
-- GIN indexes, inside the one tenant.

-- The search itself, for a tenant already checked: the machine path (the function's own
-- database role, the provider's credential checked by the voice function) and the
-- definer below. Not executable by API roles.
create function private.kb_search_in_tenant(
  p_tenant_id uuid,
  p_query text,
  p_knowledge_base_id uuid default null,
  p_limit int default 5,
  p_embedding real[] default null
)
returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
language plpgsql stable
set search_path = ''
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
    select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content,
           greatest(ts_rank(k.search_english, qe), ts_rank(k.search_simple, qs))::real as score
    from public.kb_chunks k
    join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
    where k.tenant_id = p_tenant_id
      and (p_knowledge_base_id is null or k.knowledge_base_id = p_knowledge_base_id)
      and (k.search_english @@ qe or k.search_simple @@ qs)
    order by score desc, k.id
    limit v_limit;
end;
$$;
revoke all on function private.kb_search_in_tenant(uuid, text, uuid, int, real[]) from public, anon, authenticated;

-- Redefined: a definer that answers only for a tenant whose members may read its
-- knowledge (the kb_chunks select policy: a member of any role, or a platform admin);
-- for any other tenant, nothing, as for a tenant without knowledge.
create or replace function private.kb_search(
  p_tenant_id uuid,
  p_query text,
  p_knowledge_base_id uuid default null,
  p_limit int default 5,
  p_embedding real[] default null
)
returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not (p_tenant_id = any (private.tenant_ids('user')) or private.is_platform_admin()) then
    return;
  end if;
  return query select * from private.kb_search_in_tenant(p_tenant_id, p_query, p_knowledge_base_id, p_limit, p_embedding);
end;
$$;

-- The calls of a tenant whose transcript matches a query (English, stemmed), for the
-- calls list: the same standing as the voice_call_segments select policy.
create function private.voice_calls_matching(p_tenant_id uuid, p_query text) returns setof uuid
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not (p_tenant_id = any (private.tenant_ids('user')) or private.is_platform_admin()) then
    return;
  end if;
  return query
    select distinct g.call_id from public.voice_call_segments g
    where g.tenant_id = p_tenant_id and g.search @@ websearch_to_tsquery('english'::regconfig, coalesce(p_query, ''));
end;
$$;
revoke all on function private.voice_calls_matching(uuid, text) from public, anon;
grant execute on function private.voice_calls_matching(uuid, text) to authenticated, service_role;
