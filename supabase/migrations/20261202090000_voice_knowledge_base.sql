-- Voice agents' knowledge base (issue 14): knowledge bases, their documents, and the
-- chunks each document is split into on write, searched by full text in two
-- configurations (`simple`, exact words in any language; `english`, stemmed). Where the
-- `vector` extension exists (hosted projects), chunks also get an embedding column and
-- an HNSW index, filled by whoever computes embeddings; private.kb_search hides which
-- search runs. The local embedded Postgres has no `vector`: the block below skips it.
-- Admins manage knowledge bases and documents; every member reads; chunks are the
-- database's (written only by the documents' trigger).

-- ------------------------------------------------------------------ tables

create table public.voice_knowledge_bases (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  name text not null check (char_length(name) between 1 and 100),
  description text check (char_length(description) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, name)
);

create table public.kb_documents (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  knowledge_base_id uuid not null,
  title text not null check (char_length(title) between 1 and 200),
  source text check (char_length(source) <= 2000),
  format text not null default 'text' check (format in ('text', 'markdown')),
  content text not null check (char_length(content) between 1 and 1000000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, knowledge_base_id) references public.voice_knowledge_bases (tenant_id, id) on delete cascade
);
create index kb_documents_kb_idx on public.kb_documents (tenant_id, knowledge_base_id, created_at desc, id desc);

create table public.kb_chunks (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  knowledge_base_id uuid not null,
  document_id uuid not null,
  ordinal int not null check (ordinal >= 0),
  content text not null,
  created_at timestamptz not null default now(),
  search_simple tsvector generated always as (to_tsvector('simple'::regconfig, content)) stored,
  search_english tsvector generated always as (to_tsvector('english'::regconfig, content)) stored,
  primary key (tenant_id, id),
  unique (tenant_id, document_id, ordinal),
  foreign key (tenant_id, document_id) references public.kb_documents (tenant_id, id) on delete cascade,
  foreign key (tenant_id, knowledge_base_id) references public.voice_knowledge_bases (tenant_id, id) on delete cascade
);
create index kb_chunks_kb_idx on public.kb_chunks (tenant_id, knowledge_base_id);
create index kb_chunks_search_simple_idx on public.kb_chunks using gin (search_simple);
create index kb_chunks_search_english_idx on public.kb_chunks using gin (search_english);

create trigger set_updated_at before update on public.voice_knowledge_bases
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.kb_documents
  for each row execute function private.set_updated_at();
select private.enable_audit('public.voice_knowledge_bases');
select private.enable_audit('public.kb_documents');
select private.enable_audit('public.kb_chunks');

-- ------------------------------------------------------------------ chunking on write

-- A text as chunks of at most p_max characters: paragraphs (blank-line separated) are
-- packed together while they fit; a longer paragraph is cut at the last whitespace
-- before the limit. Pure.
create function private.kb_chunk_text(p_text text, p_max int default 1200)
returns table (ordinal int, content text)
language plpgsql immutable
set search_path = ''
as $$
declare
  v_para text;
  v_buf text := '';
  v_cut int;
  v_n int := 0;
begin
  foreach v_para in array regexp_split_to_array(replace(p_text, E'\r\n', E'\n'), E'\n[ \t]*\n') loop
    v_para := btrim(v_para, E' \t\n');
    continue when v_para = '';
    if v_buf <> '' and char_length(v_buf) + 2 + char_length(v_para) <= p_max then
      v_buf := v_buf || E'\n\n' || v_para;
      continue;
    end if;
    if v_buf <> '' then
      ordinal := v_n; content := v_buf; return next; v_n := v_n + 1;
      v_buf := '';
    end if;
    while char_length(v_para) > p_max loop
      v_cut := p_max - coalesce(nullif(strpos(reverse(left(v_para, p_max)), ' '), 0), 1) + 1;
      if v_cut < p_max / 2 then v_cut := p_max; end if;
      ordinal := v_n; content := btrim(left(v_para, v_cut)); return next; v_n := v_n + 1;
      v_para := btrim(substr(v_para, v_cut + 1));
    end loop;
    v_buf := v_para;
  end loop;
  if v_buf <> '' then
    ordinal := v_n; content := v_buf; return next;
  end if;
end;
$$;
revoke all on function private.kb_chunk_text(text, int) from public, anon, authenticated;

-- A document's chunks follow its content: written with the document, replaced when the
-- content changes. Definer: API roles have no write privilege on kb_chunks.
create function private.kb_document_chunks() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    delete from public.kb_chunks where tenant_id = new.tenant_id and document_id = new.id;
  end if;
  insert into public.kb_chunks (tenant_id, knowledge_base_id, document_id, ordinal, content)
  select new.tenant_id, new.knowledge_base_id, new.id, c.ordinal, c.content
  from private.kb_chunk_text(new.content) c;
  return null;
end;
$$;
revoke all on function private.kb_document_chunks() from public, anon, authenticated;
create trigger kb_document_chunks after insert or update of content, knowledge_base_id on public.kb_documents
  for each row execute function private.kb_document_chunks();

-- ------------------------------------------------------------------ vector search, where available

do $vector$
begin
  if not exists (select 1 from pg_catalog.pg_available_extensions where name = 'vector') then
    raise notice 'The vector extension is not available: knowledge-base search is full-text only';
    return;
  end if;
  create extension if not exists vector with schema extensions;
  alter table public.kb_chunks add column embedding extensions.vector(1536);
  create index kb_chunks_embedding_idx on public.kb_chunks using hnsw (embedding extensions.vector_cosine_ops);
exception when others then
  -- Not allowed to create it here (privileges, a different build): skip cleanly.
  raise notice 'vector search skipped: %', sqlerrm;
end
$vector$;

-- ------------------------------------------------------------------ search

-- The best chunks of a tenant's knowledge base (or all of its knowledge bases) for a
-- query: by embedding (cosine distance) when one is given and the embedding column
-- exists, else by full text in both configurations, the better rank of the two. Invoker:
-- RLS on kb_chunks decides what an API caller finds; the machine path (service role)
-- names the tenant, and the tenant filter holds for it too.
create function private.kb_search(
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
revoke all on function private.kb_search(uuid, text, uuid, int, real[]) from public, anon;
grant execute on function private.kb_search(uuid, text, uuid, int, real[]) to authenticated, service_role;

-- ------------------------------------------------------------------ who sees what

alter table public.voice_knowledge_bases enable row level security;
alter table public.kb_documents enable row level security;
alter table public.kb_chunks enable row level security;
revoke all on public.voice_knowledge_bases, public.kb_documents, public.kb_chunks from anon, authenticated;
grant select, insert (tenant_id, name, description), update (name, description), delete
  on public.voice_knowledge_bases to authenticated;
grant select, insert (tenant_id, knowledge_base_id, title, source, format, content),
  update (title, source, format, content), delete
  on public.kb_documents to authenticated;
grant select on public.kb_chunks to authenticated;

-- Members read; admins manage (a suspended tenant is read-only).
create policy voice_knowledge_bases_select on public.voice_knowledge_bases for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy voice_knowledge_bases_insert on public.voice_knowledge_bases for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_knowledge_bases_update on public.voice_knowledge_bases for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_knowledge_bases_delete on public.voice_knowledge_bases for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

create policy kb_documents_select on public.kb_documents for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy kb_documents_insert on public.kb_documents for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy kb_documents_update on public.kb_documents for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy kb_documents_delete on public.kb_documents for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

create policy kb_chunks_select on public.kb_chunks for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
