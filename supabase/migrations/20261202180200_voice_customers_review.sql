-- Review of 20261202180000 and 20261202180100 (issue 14).

-- ------------------------------------------------------------------ tools, strictly

-- 20261202180100's check read the tools with a lax jsonpath, which unwraps a nested
-- array before the filter: `[[{"a": 1}]]` and `[[]]` passed, though the API refuses them.
-- In strict mode every element is tested as it is. Added NOT VALID and validated only
-- where every row already passes, so a project holding such an agent still migrates (a
-- notice says how many rows to correct); new and changed rows are checked everywhere.
alter table public.voice_agents drop constraint voice_agents_llm_config_tools;
alter table public.voice_agents add constraint voice_agents_llm_config_tools
  check (case when jsonb_typeof(llm_config -> 'tools') = 'array'
              then jsonb_array_length(llm_config -> 'tools') <= 50
                   and not jsonb_path_exists(llm_config -> 'tools', 'strict $[*] ? (@.type() != "object")')
              else true end) not valid;
do $$
declare
  v_bad bigint;
begin
  select count(*) into v_bad from public.voice_agents
  where jsonb_typeof(llm_config -> 'tools') = 'array'
    and (jsonb_array_length(llm_config -> 'tools') > 50
         or jsonb_path_exists(llm_config -> 'tools', 'strict $[*] ? (@.type() != "object")'));
  if v_bad = 0 then
    alter table public.voice_agents validate constraint voice_agents_llm_config_tools;
  else
    raise notice 'voice_agents_llm_config_tools: % agent(s) hold tools the API refuses; correct them, then VALIDATE CONSTRAINT', v_bad;
  end if;
end;
$$;

-- ------------------------------------------------------------------ chunks only for a new content

-- A document's chunks were made again whenever its content was in an UPDATE's SET list,
-- even unchanged (the PATCH route, or a client resending the document through
-- PostgREST): new chunk ids, embeddings lost, an audit row per chunk. Now only when
-- the content or the knowledge base really changes; inserts as before.
drop trigger kb_document_chunks on public.kb_documents;
create trigger kb_document_chunks after insert on public.kb_documents
  for each row execute function private.kb_document_chunks();
create trigger kb_document_chunks_changed after update of content, knowledge_base_id on public.kb_documents
  for each row
  when (old.content is distinct from new.content or old.knowledge_base_id is distinct from new.knowledge_base_id)
  execute function private.kb_document_chunks();

-- ------------------------------------------------------------------ transcript search for customers

-- Redefined: as 20261202090500_voice_search_under_rls.sql, but a tenant's customer (role
-- user) searches only the transcripts they may read (20261202180000): the calls of their
-- linked voice customer record. It answered any member with every matching call of the
-- tenant; the calls list read those ids under RLS, so nothing showed, but a customer's
-- search cost a search of the whole tenant, and the function told a member whether
-- some other caller's call held a word.
create or replace function private.voice_calls_matching(p_tenant_id uuid, p_query text) returns setof uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  q tsquery := websearch_to_tsquery('english'::regconfig, coalesce(p_query, ''));
begin
  if p_tenant_id = any (private.tenant_ids('agent')) or private.is_platform_admin() then
    return query
      select distinct g.call_id from public.voice_call_segments g
      where g.tenant_id = p_tenant_id and g.search @@ q;
  elsif p_tenant_id = any (private.tenant_ids('user')) then
    return query
      select distinct g.call_id
      from public.voice_customers cu
      join public.voice_calls v on v.tenant_id = cu.tenant_id and v.customer_id = cu.id
      join public.voice_call_segments g on g.tenant_id = v.tenant_id and g.call_id = v.id
      where cu.tenant_id = p_tenant_id and cu.user_id = private.current_user_id() and g.search @@ q;
  end if;
end;
$$;
