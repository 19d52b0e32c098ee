-- A tag registry per tenant, with colours (issue 16 §4).
--
-- Tickets keep their tags as a text[] (the search column, the GIN index and every
-- client read them there). The registry lists each tenant's tags with a colour and a
-- description that admins keep. Decision: tags are registered automatically, not
-- validated against the registry — whoever may tag a ticket (staff, a customer filing
-- one, a macro, a Chatwoot conversation) may still use a new word, and it joins the
-- registry with no colour in the same transaction (a trigger, running as the owner, so
-- the tagger needs no write right on the registry). Refusing unknown tags would break
-- every path that tags today and make a typo a 422 for a customer. Admins colour, describe
-- and remove tags; a tag still on a ticket cannot be removed (409 tag_in_use), and names
-- never change (a rename would rewrite tickets).

create table public.tags (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  -- The same rule as the API's Tag: 1–50 characters, no commas, no leading space.
  name text not null check (char_length(name) between 1 and 50 and name ~ '^[^,\s][^,]*$'),
  color text check (color ~ '^#[0-9a-f]{6}$'),
  description text check (char_length(description) <= 500),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint tags_name_key unique (tenant_id, name)
);
comment on table public.tags is
  'A tenant''s tags with colours; a tag used on a ticket is registered automatically (no colour).';

create trigger set_updated_at before update on public.tags
  for each row execute function private.set_updated_at();

-- Registers the tags a ticket gains. Sorted, so two transactions registering the same
-- new tags wait for each other in one order (no deadlock: lock order "by key within a
-- level"); after the ticket row, which the insert or update already holds.
create function private.register_ticket_tags() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into public.tags (tenant_id, name)
  select new.tenant_id, x.tag
  from (select distinct tag from unnest(new.tags) tag) x
  where tg_op = 'INSERT' or x.tag <> all (old.tags)
  order by x.tag
  on conflict (tenant_id, name) do nothing;
  return null;
end;
$$;
revoke all on function private.register_ticket_tags() from public, anon, authenticated, service_role;
create trigger register_ticket_tags after insert or update of tags on public.tickets
  for each row when (cardinality(new.tags) > 0) execute function private.register_ticket_tags();

-- A tag still on a ticket (deleted ones included: a restore brings them back) stays.
-- Runs as the owner: the admin may not see every ticket it is on (a super-admin does;
-- an admin sees all of the tenant's anyway, but the rule should not depend on it).
-- Counted, not `exists`: with a LIMIT 1 the planner bets a tag is common and walks the
-- tenant's tickets; a count goes through the tags' GIN index.
create function private.guard_tag_delete() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_tickets bigint;
begin
  select count(*) into v_tickets from public.tickets t where t.tenant_id = old.tenant_id and t.tags @> array[old.name];
  if v_tickets > 0 then
    raise exception 'The tag "%" is still on % tickets', old.name, v_tickets using errcode = 'PT409',
      detail = jsonb_build_object('code', 'tag_in_use', 'details', jsonb_build_object('tag', old.name, 'tickets', v_tickets));
  end if;
  return old;
end;
$$;
revoke all on function private.guard_tag_delete() from public, anon, authenticated, service_role;
create trigger guard_tag_delete before delete on public.tags
  for each row execute function private.guard_tag_delete();

-- The tags already on tickets.
insert into public.tags (tenant_id, name)
select distinct t.tenant_id, x.tag from public.tickets t cross join lateral unnest(t.tags) x (tag)
where char_length(x.tag) between 1 and 50 and x.tag ~ '^[^,\s][^,]*$'
on conflict (tenant_id, name) do nothing;

select private.enable_audit('public.tags');

-- ------------------------------------------------------------------ who sees and keeps them

alter table public.tags enable row level security;
revoke all on public.tags from anon, authenticated;
grant select, insert (tenant_id, name, color, description), update (color, description), delete
  on public.tags to authenticated;

-- Staff read them; customers do not (the registry holds every tag staff put on any
-- ticket — a customer sees the tags of their own tickets on the tickets). Admins keep
-- them, in an active tenant.
create policy tags_select on public.tags for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) or (select private.is_platform_admin()));
create policy tags_insert on public.tags for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy tags_update on public.tags for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy tags_delete on public.tags for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
