-- Support tickets, the tables: tickets, their messages and internal notes, and the
-- ticket timeline, with what they need from the tenant core (auto-assignment settings on
-- teams, agents' availability), the per-tenant counter and the status machine as data.
-- The rules that hold for every write are in tickets_rules, who sees what in
-- tickets_rls, staff operations in tickets_operations; SLA policies, attachments,
-- idempotent creates and statistics have their own files.

-- ------------------------------------------------------------------ prerequisites

-- Automatic assignment, configured per team; agents can be marked unavailable.
alter table public.teams
  add column auto_assign text not null default 'none' check (auto_assign in ('none', 'round_robin', 'least_open')),
  add column last_assigned_user_id uuid;
grant insert (auto_assign), update (auto_assign) on public.teams to authenticated;
alter table public.memberships add column available boolean not null default true;
grant update (available) on public.memberships to authenticated;

-- Gap-free ticket numbers per tenant: the counter row is locked by the inserting
-- transaction, so concurrent creates queue on it and a rolled-back create gives its
-- number back. Private: nothing but the trigger touches it.
create table private.ticket_counters (
  tenant_id uuid primary key references public.tenants (id) on delete cascade,
  last_number bigint not null default 0
);

-- The status machine, as data: every allowed (from, to). Everything else is refused.
create table private.ticket_status_transitions (
  from_status text not null,
  to_status text not null,
  primary key (from_status, to_status)
);
insert into private.ticket_status_transitions (from_status, to_status) values
  ('open', 'pending'), ('open', 'escalated'), ('open', 'resolved'),
  ('pending', 'open'), ('pending', 'escalated'), ('pending', 'resolved'),
  ('escalated', 'open'), ('escalated', 'pending'), ('escalated', 'resolved'),
  ('resolved', 'closed'), ('resolved', 'open'),
  ('closed', 'open'); -- reopening a closed ticket: only within the tenant's window

-- ------------------------------------------------------------------ tables

-- array_to_string is only marked stable (it could format other element types by the
-- session's settings); for text[] it is immutable, which the search column needs. Pure,
-- and evaluated inside the API roles' own statements (the generated column), so it is
-- executable by them, not by PUBLIC.
create function private.tags_text(p_tags text[]) returns text
language sql immutable parallel safe
set search_path = ''
as $$ select array_to_string(p_tags, ' ') $$;
revoke all on function private.tags_text(text[]) from public, anon;
grant execute on function private.tags_text(text[]) to authenticated, service_role;

create table public.tickets (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  number bigint not null,
  title text not null check (char_length(title) between 5 and 200),
  description text check (char_length(description) <= 5000),
  status text not null default 'open' check (status in ('open', 'pending', 'escalated', 'resolved', 'closed')),
  priority text not null default 'medium' check (priority in ('low', 'medium', 'high', 'urgent')),
  department text not null default 'support' check (department in ('sales', 'support', 'marketing', 'technical')),
  team_id uuid,
  created_by uuid references public.users (id) on delete set null,
  assigned_to uuid,
  due_date timestamptz,
  first_response_due_at timestamptz,
  first_response_at timestamptz,
  resolved_at timestamptz,
  closed_at timestamptz,
  sla_first_response_breached_at timestamptz,
  sla_resolution_breached_at timestamptz,
  tags text[] not null default '{}' check (cardinality(tags) <= 20),
  metadata jsonb not null default '{}'::jsonb
    check (jsonb_typeof(metadata) = 'object' and octet_length(metadata::text) <= 16384),
  merged_into_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  search tsvector generated always as (
    setweight(to_tsvector('english', coalesce(title, '')), 'A')
    || setweight(to_tsvector('english', coalesce(description, '')), 'B')
    || setweight(to_tsvector('english', private.tags_text(tags)), 'C')
  ) stored,
  primary key (tenant_id, id),
  unique (tenant_id, number),
  foreign key (tenant_id, team_id) references public.teams (tenant_id, id) on delete set null (team_id),
  -- The assignee is a member of this tenant (the trigger checks the role); losing the
  -- membership unassigns.
  foreign key (tenant_id, assigned_to) references public.memberships (tenant_id, user_id) on delete set null (assigned_to),
  foreign key (tenant_id, merged_into_id) references public.tickets (tenant_id, id),
  check (merged_into_id is null or merged_into_id <> id),
  check (merged_into_id is null or status = 'closed')
);
create index tickets_tenant_created_idx on public.tickets (tenant_id, created_at desc, id desc);
create index tickets_tenant_updated_idx on public.tickets (tenant_id, updated_at desc, id desc);
create index tickets_tenant_status_idx on public.tickets (tenant_id, status, priority);
create index tickets_assignee_idx on public.tickets (tenant_id, assigned_to, status);
create index tickets_team_idx on public.tickets (tenant_id, team_id, status);
create index tickets_requester_idx on public.tickets (tenant_id, created_by);
create index tickets_created_by_idx on public.tickets (created_by);
create index tickets_merged_into_idx on public.tickets (tenant_id, merged_into_id) where merged_into_id is not null;
create index tickets_search_idx on public.tickets using gin (search);
create index tickets_tags_idx on public.tickets using gin (tags);
-- The SLA sweep's work lists: only tickets still waiting can breach.
create index tickets_first_response_due_idx on public.tickets (first_response_due_at)
  where first_response_at is null and sla_first_response_breached_at is null and deleted_at is null;
create index tickets_resolution_due_idx on public.tickets (due_date)
  where resolved_at is null and sla_resolution_breached_at is null and deleted_at is null;

create table public.ticket_messages (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  ticket_id uuid not null,
  author_id uuid references public.users (id) on delete set null,
  type text not null default 'message' check (type in ('message', 'note', 'system')),
  content text not null check (char_length(content) between 1 and 10000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  edited_at timestamptz,
  primary key (tenant_id, id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
create index ticket_messages_ticket_idx on public.ticket_messages (tenant_id, ticket_id, created_at);
create index ticket_messages_author_idx on public.ticket_messages (author_id);

create table public.ticket_events (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id bigint generated always as identity,
  ticket_id uuid not null,
  type text not null check (type in (
    'created', 'status_changed', 'assigned', 'unassigned', 'priority_changed', 'team_changed',
    'sla_breached', 'merged', 'merged_into', 'deleted', 'restored')),
  data jsonb not null default '{}'::jsonb,
  actor_user_id uuid references public.users (id) on delete set null,
  created_at timestamptz not null default clock_timestamp(),
  primary key (tenant_id, id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
create index ticket_events_ticket_idx on public.ticket_events (tenant_id, ticket_id, id);
create index ticket_events_actor_idx on public.ticket_events (actor_user_id);

-- ------------------------------------------------------------------ updated_at, audit, realtime

create trigger set_updated_at before update on public.tickets
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.ticket_messages
  for each row execute function private.set_updated_at();

select private.enable_audit('public.tickets');
select private.enable_audit('public.ticket_messages');
select private.enable_audit('public.ticket_events');

-- Realtime clients follow tickets and conversations (RLS applies to what they receive).
alter publication supabase_realtime add table public.tickets, public.ticket_messages, public.ticket_events;
