-- Voice customers (issue 14): the people who call a tenant's agents, by E.164 phone
-- (unique per tenant), optionally linked to a platform user of the tenant (the requester
-- of tickets opened from their calls), with consent flags whose times the database
-- keeps. Agents manage customers; every member reads them.

create table public.voice_customers (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  phone text not null check (phone ~ '^\+[1-9][0-9]{6,14}$'),
  name text check (char_length(name) <= 200),
  email text check (char_length(email) <= 320 and email ~ '^[^@\s]+@[^@\s]+$'),
  notes text check (char_length(notes) <= 10000),
  tags text[] not null default '{}' check (cardinality(tags) <= 50),
  user_id uuid,
  recording_consent boolean not null default false,
  recording_consent_at timestamptz,
  marketing_consent boolean not null default false,
  marketing_consent_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, phone),
  -- The linked user is a member of this tenant; losing the membership unlinks.
  foreign key (tenant_id, user_id) references public.memberships (tenant_id, user_id) on delete set null (user_id)
);
create index voice_customers_tenant_created_idx on public.voice_customers (tenant_id, created_at desc, id desc);
create index voice_customers_user_idx on public.voice_customers (tenant_id, user_id) where user_id is not null;
create index voice_customers_tags_idx on public.voice_customers using gin (tags);

-- The time each consent was given is the database's: set when the flag turns true,
-- cleared when it is withdrawn.
create function private.voice_customer_consents() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.recording_consent and (tg_op = 'INSERT' or not old.recording_consent) then
    new.recording_consent_at := now();
  elsif not new.recording_consent then
    new.recording_consent_at := null;
  elsif tg_op = 'UPDATE' then
    new.recording_consent_at := old.recording_consent_at;
  end if;
  if new.marketing_consent and (tg_op = 'INSERT' or not old.marketing_consent) then
    new.marketing_consent_at := now();
  elsif not new.marketing_consent then
    new.marketing_consent_at := null;
  elsif tg_op = 'UPDATE' then
    new.marketing_consent_at := old.marketing_consent_at;
  end if;
  return new;
end;
$$;
revoke all on function private.voice_customer_consents() from public, anon, authenticated;
create trigger voice_customer_consents before insert or update on public.voice_customers
  for each row execute function private.voice_customer_consents();

create trigger set_updated_at before update on public.voice_customers
  for each row execute function private.set_updated_at();
select private.enable_audit('public.voice_customers');

alter table public.voice_customers enable row level security;
revoke all on public.voice_customers from anon, authenticated;
grant select,
  insert (tenant_id, phone, name, email, notes, tags, user_id, recording_consent, marketing_consent),
  update (phone, name, email, notes, tags, user_id, recording_consent, marketing_consent),
  delete
  on public.voice_customers to authenticated;

create policy voice_customers_select on public.voice_customers for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy voice_customers_insert on public.voice_customers for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_customers_update on public.voice_customers for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()));
create policy voice_customers_delete on public.voice_customers for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()));
