-- Attachments: files on a ticket or on one of its messages. The database decides where
-- each file lives (<tenant>/<ticket>/<attachment>/<file name>) and its status; the bytes
-- go straight between the client and storage through signed URLs (Supabase Storage's
-- private bucket `attachments` on a hosted project, a folder in the local stack).

-- ------------------------------------------------------------------ the table

create table public.attachments (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  ticket_id uuid not null,
  -- On a message of the ticket, or (null) on the ticket itself: exactly one parent.
  message_id uuid,
  file_name text not null
    check (char_length(file_name) between 1 and 255 and file_name !~ '[/\\[:cntrl:]]' and file_name not in ('.', '..')),
  content_type text not null default 'application/octet-stream' check (char_length(content_type) <= 255),
  size_bytes bigint not null check (size_bytes between 1 and 52428800),
  -- Both set by the database (set_attachment_location), never by a caller.
  bucket text not null default 'attachments',
  path text not null,
  status text not null default 'pending' check (status in ('pending', 'uploaded')),
  uploaded_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (bucket, path),
  -- Every object lives at <tenant>/<ticket>/<attachment>/<file name>: under its tenant's
  -- prefix, so storage policies can key on it, and with no room for ".." segments.
  check (path ~ ('^' || tenant_id::text || '/[0-9a-f-]{36}/[0-9a-f-]{36}/[^/]+$')),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade,
  foreign key (tenant_id, message_id) references public.ticket_messages (tenant_id, id) on delete cascade
);
create index attachments_ticket_idx on public.attachments (tenant_id, ticket_id);
create index attachments_message_idx on public.attachments (tenant_id, message_id) where message_id is not null;
create index attachments_uploaded_by_idx on public.attachments (uploaded_by);

create trigger set_updated_at before update on public.attachments
  for each row execute function private.set_updated_at();
select private.enable_audit('public.attachments');

-- ------------------------------------------------------------------ rules

-- Who uploaded it and where its bytes go are the database's to say. An attachment may
-- reference only its uploader's own message (issue 9: a customer attached a file to a
-- staff member's reply on their own ticket, and the insert policy checked only that the
-- message belongs to the ticket); the rule lives here, where the uploader is decided, so
-- it holds for every path, and it raises PT403 (the functions answer 403).
create function private.set_attachment_location() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.uploaded_by := private.current_user_id();
  if new.message_id is not null and not exists (
    select 1 from public.ticket_messages m
    where m.tenant_id = new.tenant_id and m.id = new.message_id and m.ticket_id = new.ticket_id
      and m.author_id = new.uploaded_by
  ) then
    raise exception 'a file can be attached only to your own message' using errcode = 'PT403';
  end if;
  new.bucket := 'attachments';
  new.path := new.tenant_id || '/' || new.ticket_id || '/' || new.id || '/' || new.file_name;
  new.status := 'pending';
  return new;
end;
$$;
revoke all on function private.set_attachment_location() from public, anon;
create trigger set_attachment_location before insert on public.attachments
  for each row execute function private.set_attachment_location();

-- A new attachment locks its ticket first, as a new message does (lock level 5;
-- private.lock_parent_ticket, 20261126100900_tickets_rules.sql).
create trigger ticket_parent_lock before insert on public.attachments
  for each row execute function private.lock_parent_ticket();

-- ------------------------------------------------------------------ access

alter table public.attachments enable row level security;
revoke all on public.attachments from anon, authenticated;
grant select, insert (tenant_id, ticket_id, message_id, file_name, content_type, size_bytes)
  on public.attachments to authenticated;

-- Attachments follow their ticket, and their message (a note's files are staff-only).
create policy attachments_select on public.attachments for select to authenticated
  using (
    exists (select 1 from public.tickets t where t.tenant_id = attachments.tenant_id and t.id = attachments.ticket_id)
    and (message_id is null or exists (
      select 1 from public.ticket_messages m where m.tenant_id = attachments.tenant_id and m.id = attachments.message_id))
  );
create policy attachments_insert on public.attachments for insert to authenticated
  with check (
    (tenant_id = any ((select private.tenant_ids('user', true))::uuid[]) or (select private.is_platform_admin()))
    and exists (select 1 from public.tickets t where t.tenant_id = attachments.tenant_id and t.id = attachments.ticket_id)
    and (message_id is null or exists (
      select 1 from public.ticket_messages m
      where m.tenant_id = attachments.tenant_id and m.id = attachments.message_id and m.ticket_id = attachments.ticket_id))
  );

-- ------------------------------------------------------------------ uploads

-- The storage confirmed the bytes arrived (the function checks before it calls this).
-- Only for a ticket the caller sees; in a read-only (suspended) tenant it records
-- nothing, so reading an attachment there still works but writes no row.
create function private.mark_attachment_uploaded(p_tenant_id uuid, p_attachment_id uuid) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ticket uuid;
begin
  select a.ticket_id into v_ticket from public.attachments a where a.tenant_id = p_tenant_id and a.id = p_attachment_id;
  if v_ticket is null or not private.can_see_ticket(p_tenant_id, v_ticket) then
    raise exception 'attachment not found' using errcode = 'PT404';
  end if;
  if p_tenant_id <> all (private.tenant_ids('user', true)) and not private.is_platform_admin() then
    return;
  end if;
  update public.attachments set status = 'uploaded'
  where tenant_id = p_tenant_id and id = p_attachment_id and status = 'pending';
end;
$$;
revoke all on function private.mark_attachment_uploaded(uuid, uuid) from public, anon;
grant execute on function private.mark_attachment_uploaded(uuid, uuid) to authenticated, service_role;

-- ------------------------------------------------------------------ storage

-- On a hosted project, the private Storage bucket attachments live in. Clients never
-- touch it directly: the tickets function hands out short-lived signed URLs, under the
-- `<tenant_id>/` prefix. The local stack has no storage schema and keeps the bytes in a
-- folder instead (shared/storage.ts).
do $$
begin
  if exists (select 1 from information_schema.tables where table_schema = 'storage' and table_name = 'buckets') then
    insert into storage.buckets (id, name, public, file_size_limit)
    values ('attachments', 'attachments', false, 52428800)
    on conflict (id) do nothing;
  end if;
end
$$;
