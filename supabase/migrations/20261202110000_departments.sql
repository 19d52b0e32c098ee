-- Departments per tenant (issue 16 §4). A ticket's and a team's department used to be
-- one of four fixed words (a check constraint); now each tenant keeps its own list in
-- public.departments, seeded with the four defaults for every tenant, existing and new.
--
-- Tickets and teams keep their `department` text column, now the department's key and a
-- composite foreign key (tenant_id, department) → departments (tenant_id, key): a ticket
-- can only name a department of its own tenant, the API and PostgREST answer exactly as
-- before for the defaults, and routing (teams.receives_department_tickets,
-- private.route_ticket_by_department) compares the same two columns it always did.
-- A key never changes (no update privilege on it), so no ticket has to be rewritten;
-- the name does. A department still in use by a ticket or team cannot be removed (the
-- foreign key: 409 still_referenced).

create table public.departments (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  key text not null check (key ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
  name text not null check (char_length(btrim(name)) between 1 and 100),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint departments_key_key unique (tenant_id, key)
);
comment on table public.departments is
  'A tenant''s departments: tickets and teams name one by key (composite foreign key); seeded with sales, support, marketing, technical.';

create trigger set_updated_at before update on public.departments
  for each row execute function private.set_updated_at();

-- The defaults, for a new tenant and (below) every existing one. Runs as the owner: the
-- super-admin or machine path creating the tenant need not be its admin yet.
create function private.seed_departments() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into public.departments (tenant_id, key, name)
  values (new.id, 'sales', 'Sales'), (new.id, 'support', 'Support'),
         (new.id, 'marketing', 'Marketing'), (new.id, 'technical', 'Technical')
  on conflict (tenant_id, key) do nothing;
  return null;
end;
$$;
revoke all on function private.seed_departments() from public, anon, authenticated, service_role;
create trigger seed_departments after insert on public.tenants
  for each row execute function private.seed_departments();

insert into public.departments (tenant_id, key, name)
select t.id, d.key, d.name
from public.tenants t
cross join (values ('sales', 'Sales'), ('support', 'Support'), ('marketing', 'Marketing'), ('technical', 'Technical')) d (key, name)
on conflict (tenant_id, key) do nothing;

-- ------------------------------------------------------------------ tickets and teams point at them

alter table public.tickets drop constraint tickets_department_check;
alter table public.teams drop constraint teams_department_check;
alter table public.tickets
  add constraint tickets_tenant_id_department_fkey foreign key (tenant_id, department)
  references public.departments (tenant_id, key);
alter table public.teams
  add constraint teams_tenant_id_department_fkey foreign key (tenant_id, department)
  references public.departments (tenant_id, key);
-- Removing a department looks for its tickets and teams.
create index tickets_department_idx on public.tickets (tenant_id, department);
create index teams_department_idx on public.teams (tenant_id, department);

select private.enable_audit('public.departments');

-- ------------------------------------------------------------------ who sees and keeps them

alter table public.departments enable row level security;
revoke all on public.departments from anon, authenticated;
-- Never the key on update: tickets and teams refer to it.
grant select, insert (tenant_id, key, name), update (name), delete on public.departments to authenticated;

-- Every member reads them (customers choose one when filing); admins keep them, in an
-- active tenant.
create policy departments_select on public.departments for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy departments_insert on public.departments for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy departments_update on public.departments for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy departments_delete on public.departments for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
