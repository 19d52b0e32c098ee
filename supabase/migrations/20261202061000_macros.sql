-- Macros (issue 16 §1): named, ordered action lists an agent applies to a ticket in one
-- request, running as that agent under RLS through the same statements the API's own
-- routes run (functions/tickets/routes/macros.ts), so every action obeys the status
-- machine, the hand-off rules and the audit trail like a hand-made change. Tenant-wide
-- macros are kept by admins; personal ones by their owner.

-- The actions a macro may hold, each an object with a `type` from the allow-list and only
-- that type's fields: set_status {status}, set_priority {priority}, set_team {team_id
-- (uuid or null)}, assign {user_id (uuid or null)}, add_tags / remove_tags {tags: 1..20
-- short texts}, add_note / reply {content: 1..10000 chars}, send_canned
-- {canned_response_id}. 1 to 20 of them. Pure; the table's check constraint.
create function private.macro_actions_ok(p_actions jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_actions) = 'array'
    and jsonb_array_length(p_actions) between 1 and 20
    and not exists (
      select 1 from jsonb_array_elements(p_actions) a
      where jsonb_typeof(a) <> 'object' or not coalesce(case a ->> 'type'
        when 'set_status' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{status,type}'
          and a ->> 'status' in ('open', 'pending', 'escalated', 'resolved', 'closed')
        when 'set_priority' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{priority,type}'
          and a ->> 'priority' in ('low', 'medium', 'high', 'urgent')
        when 'set_team' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{team_id,type}'
          and (jsonb_typeof(a -> 'team_id') = 'null'
               or (a ->> 'team_id') ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
        when 'assign' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{type,user_id}'
          and (jsonb_typeof(a -> 'user_id') = 'null'
               or (a ->> 'user_id') ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')
        when 'add_tags' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{tags,type}'
          and jsonb_typeof(a -> 'tags') = 'array' and jsonb_array_length(a -> 'tags') between 1 and 20
          and not exists (select 1 from jsonb_array_elements(a -> 'tags') t
                          where jsonb_typeof(t) <> 'string' or char_length(t #>> '{}') not between 1 and 50)
        when 'remove_tags' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{tags,type}'
          and jsonb_typeof(a -> 'tags') = 'array' and jsonb_array_length(a -> 'tags') between 1 and 20
          and not exists (select 1 from jsonb_array_elements(a -> 'tags') t
                          where jsonb_typeof(t) <> 'string' or char_length(t #>> '{}') not between 1 and 50)
        when 'add_note' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{content,type}'
          and jsonb_typeof(a -> 'content') = 'string' and char_length(a ->> 'content') between 1 and 10000
        when 'reply' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{content,type}'
          and jsonb_typeof(a -> 'content') = 'string' and char_length(a ->> 'content') between 1 and 10000
        when 'send_canned' then (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{canned_response_id,type}'
          and (a ->> 'canned_response_id') ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
        else false end, false)
    );
$$;
revoke all on function private.macro_actions_ok(jsonb) from public, anon;
grant execute on function private.macro_actions_ok(jsonb) to authenticated, service_role;

create table public.macros (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  scope text not null check (scope in ('tenant', 'personal')),
  owner_id uuid,
  name text not null check (char_length(btrim(name)) between 1 and 100),
  description text check (char_length(description) <= 1000),
  actions jsonb not null,
  created_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  -- A personal macro leaves with its owner's membership.
  foreign key (tenant_id, owner_id) references public.memberships (tenant_id, user_id) on delete cascade,
  check ((scope = 'tenant') = (owner_id is null)),
  constraint macros_actions_valid check (private.macro_actions_ok(actions))
);
create unique index macros_name_key on public.macros (tenant_id, scope, owner_id, name) nulls not distinct;
create index macros_owner_idx on public.macros (tenant_id, owner_id) where owner_id is not null;
create index macros_created_by_idx on public.macros (created_by);
create trigger set_updated_at before update on public.macros
  for each row execute function private.set_updated_at();
select private.enable_audit('public.macros');

alter table public.macros enable row level security;
revoke all on public.macros from anon, authenticated;
grant select, insert (tenant_id, scope, owner_id, name, description, actions, created_by),
  update (name, description, actions), delete on public.macros to authenticated;

-- Staff use the tenant's macros and their own; customers none; a personal one is its
-- owner's alone (not even admins see it).
create policy macros_select on public.macros for select to authenticated
  using (
    (select private.is_platform_admin())
    or (scope = 'tenant' and tenant_id = any ((select private.tenant_ids('agent'))::uuid[]))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent'))::uuid[]))
  );
create policy macros_insert on public.macros for insert to authenticated
  with check (
    (select private.is_platform_admin())
    or (scope = 'tenant' and tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );
create policy macros_update on public.macros for update to authenticated
  using (
    (select private.is_platform_admin())
    or (scope = 'tenant' and tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );
create policy macros_delete on public.macros for delete to authenticated
  using (
    (select private.is_platform_admin())
    or (scope = 'tenant' and tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]))
    or (scope = 'personal' and owner_id = (select private.current_user_id())
        and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );
