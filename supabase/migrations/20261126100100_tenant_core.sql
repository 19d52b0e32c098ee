-- Tenant core: tenants, platform users and their identities, memberships, platform
-- admins, teams, invitations. Every tenant-owned table carries tenant_id in its primary
-- key, and child rows point at parents through composite (tenant_id, …) foreign keys, so
-- a row can never reference another tenant's row. Who may reach these rows is the next
-- concerns' (access helpers, audit, tenant_core_rls); the rules that RLS cannot say are
-- in tenant_core_rules.

-- ------------------------------------------------------------------ tables

create table public.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null check (char_length(btrim(name)) between 1 and 100),
  -- The slug doubles as a subdomain: DNS label rules, 3–63 characters, lower case
  -- letters, digits and inner hyphens.
  slug text not null unique
    check (slug ~ '^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$' and slug !~ '--'),
  status text not null default 'active' check (status in ('active', 'suspended', 'deleted')),
  plan text not null default 'starter' check (plan in ('starter', 'pro', 'enterprise')),
  settings jsonb not null default '{}'::jsonb
    check (jsonb_typeof(settings) = 'object' and octet_length(settings::text) <= 16384),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  check ((status = 'deleted') = (deleted_at is not null))
);
create index tenants_name_idx on public.tenants (name, id);
comment on table public.tenants is 'Organisations using the platform; every tenant-owned row points here.';

create table public.users (
  id uuid primary key default gen_random_uuid(),
  email text not null check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and char_length(email) <= 320),
  first_name text check (char_length(first_name) <= 100),
  last_name text check (char_length(last_name) <= 100),
  display_name text check (char_length(display_name) <= 200),
  avatar_url text check (char_length(avatar_url) <= 2048),
  profile jsonb not null default '{}'::jsonb
    check (jsonb_typeof(profile) = 'object' and octet_length(profile::text) <= 16384),
  status text not null default 'active' check (status in ('active', 'disabled', 'deleted')),
  last_login_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz
);
create unique index users_email_key on public.users (lower(email));
comment on table public.users is 'Platform-wide people; a person may belong to several tenants.';

-- One person, many identity providers: Supabase Auth UUIDs, Clerk user_… ids and
-- SuperTokens ids are all strings keyed by the issuer that minted them.
create table public.user_identities (
  issuer text not null check (char_length(issuer) between 1 and 500),
  subject text not null check (char_length(subject) between 1 and 255),
  user_id uuid not null references public.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (issuer, subject)
);
create index user_identities_user_id_idx on public.user_identities (user_id);

-- An identity provider's organisation (Clerk's org_…) standing for a tenant, so a
-- token's active-organisation claim names the tenant.
create table public.tenant_org_links (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  issuer text not null check (char_length(issuer) between 1 and 500),
  org_id text not null check (char_length(org_id) between 1 and 255),
  created_at timestamptz not null default now(),
  primary key (tenant_id, issuer),
  unique (issuer, org_id)
);

create table public.platform_admins (
  user_id uuid primary key references public.users (id) on delete cascade,
  created_at timestamptz not null default now()
);
comment on table public.platform_admins is 'Super-admins: act across every tenant.';

create table public.memberships (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  role text not null default 'user' check (role in ('user', 'agent', 'admin')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, user_id)
);
create index memberships_user_id_idx on public.memberships (user_id, tenant_id, role);

create table public.teams (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  name text not null check (char_length(btrim(name)) between 1 and 100),
  department text not null check (department in ('sales', 'support', 'marketing', 'technical')),
  description text check (char_length(description) <= 1000),
  lead_user_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  -- The lead must be a member of the same tenant; losing the membership clears it.
  foreign key (tenant_id, lead_user_id)
    references public.memberships (tenant_id, user_id) on delete set null (lead_user_id)
);
create unique index teams_tenant_name_key on public.teams (tenant_id, lower(name));
create index teams_lead_idx on public.teams (tenant_id, lead_user_id);

create table public.team_members (
  tenant_id uuid not null,
  id uuid not null default gen_random_uuid(),
  team_id uuid not null,
  user_id uuid not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, team_id, user_id),
  foreign key (tenant_id) references public.tenants (id) on delete cascade,
  foreign key (tenant_id, team_id) references public.teams (tenant_id, id) on delete cascade,
  foreign key (tenant_id, user_id) references public.memberships (tenant_id, user_id) on delete cascade
);
create index team_members_user_idx on public.team_members (tenant_id, user_id);

-- Admins invite people by e-mail; the person joins by accepting (private.accept_invitation),
-- so nobody is put into a tenant, or shown to its admins, without their consent.
create table public.invitations (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  email text not null check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and char_length(email) <= 320),
  role text not null default 'user' check (role in ('user', 'agent', 'admin')),
  invited_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '14 days',
  accepted_at timestamptz,
  accepted_by uuid references public.users (id) on delete set null,
  primary key (tenant_id, id),
  check ((accepted_at is null) = (accepted_by is null))
);
create unique index invitations_pending_key on public.invitations (tenant_id, lower(email)) where accepted_at is null;
create index invitations_email_idx on public.invitations (lower(email)) where accepted_at is null;
create index invitations_invited_by_idx on public.invitations (invited_by);
create index invitations_accepted_by_idx on public.invitations (accepted_by);

-- ------------------------------------------------------------------ updated_at

create trigger set_updated_at before update on public.tenants
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.users
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.memberships
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.teams
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.invitations
  for each row execute function private.set_updated_at();
