-- The knowledge base and agents, after a review (issue 14).
--
-- * Chunking was quadratic in a paragraph's length: every cut copied the rest of the
--   paragraph and counted it again, so a 1,000,000-character text without blank lines
--   took ~5.5 s to chunk (0.4 s with blank lines), holding a connection of the call
--   path's pool. It now packs the paragraph's words in one pass.
-- * A long paragraph was cut only at a space: a list of one item per line ("SKU-1133")
--   was cut inside an item, and the item could no longer be found. Now a chunk ends
--   between words (any whitespace), after a line break when one falls in the chunk's
--   second half; a word longer than a chunk is still cut at the limit.
-- * A query an index cannot look up in one configuration (querytree 'T': only negations,
--   "-refund", or "the -refund" whose `the` the english configuration drops, or a term
--   OR'd with a negation, "refund or -policy") matched every chunk without the word in
--   that configuration: every chunk of the tenant ranked, and score-0 chunks handed to
--   the call's agent as the best. Such a half now matches nothing; so does such a query
--   over transcripts (the calls list's `q`).
-- * A tenant without the knowledge_base feature could still replace a document's content
--   through the table (the API refused it): new knowledge needs the feature, as a new
--   document does.
-- * A document of whitespace only was taken (no chunk: never found); an agent's language
--   tag had no length limit (sent to the provider on every call). Both refused.

-- ------------------------------------------------------------------ chunking

-- Redefined: as 20261202090000_voice_knowledge_base.sql, linear, and cutting between
-- words. Paragraphs (blank-line separated) are packed together while they fit; a longer
-- paragraph's words (each with the whitespace after it) are packed up to p_max
-- characters, the chunk ending after its last line break when that is in its second
-- half. Pure.
create or replace function private.kb_chunk_text(p_text text, p_max int default 1200)
returns table (ordinal int, content text)
language plpgsql immutable
set search_path = ''
as $$
declare
  v_para text;
  v_buf text := '';
  v_len int := 0; -- char_length(v_buf), kept rather than counted again
  v_nl int := 0; -- where the last line break in v_buf ends (0: none)
  v_tok text;
  v_tlen int;
  v_n int := 0;
begin
  foreach v_para in array regexp_split_to_array(replace(p_text, E'\r\n', E'\n'), E'\n[ \t]*\n') loop
    v_para := btrim(v_para, E' \t\n');
    continue when v_para = '';
    v_tlen := char_length(v_para);
    if v_len > 0 and v_len + 2 + v_tlen <= p_max then
      v_buf := v_buf || E'\n\n' || v_para;
      v_len := v_len + 2 + v_tlen;
      continue;
    end if;
    if v_len > 0 then
      ordinal := v_n; content := v_buf; return next; v_n := v_n + 1;
      v_buf := ''; v_len := 0;
    end if;
    if v_tlen <= p_max then
      v_buf := v_para; v_len := v_tlen;
      continue;
    end if;
    v_nl := 0;
    for v_tok in select m[1] from regexp_matches(v_para, '(\S+\s*|\s+)', 'g') m loop
      v_tlen := char_length(v_tok);
      while v_len > 0 and v_len + v_tlen > p_max loop
        if v_nl >= p_max / 2 then
          content := btrim(left(v_buf, v_nl), E' \t\n');
          v_buf := right(v_buf, -v_nl);
          v_len := v_len - v_nl;
        else
          content := btrim(v_buf, E' \t\n');
          v_buf := ''; v_len := 0;
        end if;
        v_nl := 0;
        if content <> '' then
          ordinal := v_n; return next; v_n := v_n + 1;
        end if;
      end loop;
      -- A word longer than a chunk: cut at the limit. left() and right(…, -n) count only
      -- the first p_max characters (substr() counts the whole text each time).
      while v_tlen > p_max loop
        content := btrim(left(v_tok, p_max), E' \t\n');
        if content <> '' then
          ordinal := v_n; return next; v_n := v_n + 1;
        end if;
        v_tok := right(v_tok, -p_max);
        v_tlen := v_tlen - p_max;
      end loop;
      v_buf := v_buf || v_tok;
      v_len := v_len + v_tlen;
      if strpos(v_tok, E'\n') > 0 then
        v_nl := v_len - char_length(substring(v_tok from E'\n([^\n]*)$'));
      end if;
    end loop;
    v_buf := btrim(v_buf, E' \t\n');
    v_len := char_length(v_buf);
  end loop;
  if v_len > 0 then
    ordinal := v_n; content := v_buf; return next;
  end if;
end;
$$;

-- ------------------------------------------------------------------ search

-- Redefined: as 20261202170100_kb_search_late_rows.sql, and a configuration's query that
-- an index cannot look up (negations only, alone or OR'd; or nothing left after its stop
-- words) matches nothing rather than every chunk without the word.
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

-- Redefined: as 20261202180200_voice_customers_review.sql, with the same rule for the
-- calls list's transcript words: `-refund` matched every call with one segment without
-- the word (nearly all, those that mention it included).
create or replace function private.voice_calls_matching(p_tenant_id uuid, p_query text) returns setof uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  q tsquery := websearch_to_tsquery('english'::regconfig, coalesce(p_query, ''));
begin
  if pg_catalog.querytree(q) in ('T', '') then
    return;
  end if;
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

-- ------------------------------------------------------------------ the plan

-- New content is new knowledge: the knowledge_base feature, as for a new document
-- (private.require_feature_of_trigger, 20261202190600). A new title or source, or deleting,
-- stays open to a tenant that lost the feature.
create trigger require_feature_for_content before update of content on public.kb_documents
  for each row when (new.content is distinct from old.content)
  execute function private.require_feature_of_trigger('knowledge_base');

-- ------------------------------------------------------------------ bounds

-- Not validated against the rows already there (a blank document, a long tag written
-- before): each is checked again when next written, and must then be corrected.
alter table public.kb_documents
  drop constraint kb_documents_content_check,
  add constraint kb_documents_content_check check (char_length(content) between 1 and 1000000 and content ~ '[^[:space:]]')
    not valid;

-- BCP 47 tags are at most 35 characters in practice (RFC 5646 §4.4.1).
alter table public.voice_agents
  drop constraint voice_agents_language_check,
  add constraint voice_agents_language_check check (char_length(language) <= 35 and language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$')
    not valid;
