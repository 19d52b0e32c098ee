-- Webhooks in: identity-provider sync (Clerk via Svix, Supabase Auth via a trigger on
-- auth.users and the custom access token hook) and Chatwoot conversations. Each event
-- is stored in an inbox keyed by provider and event id and applied in the same
-- transaction, so a repeat is acknowledged and never applied twice. The webhooks
-- function verifies each event and runs as service_role (a trusted path).

-- ------------------------------------------------------------------ settings

-- Platform settings the database itself needs (the Supabase Auth trigger and hook map
-- auth.users ids under this issuer). Operators set them per project.
create table private.settings (
  key text primary key,
  value text not null
);
-- supabase_auth_issuer: the `iss` of the project's Supabase Auth tokens. Nothing in a
-- hosted database names it, so it is never guessed: the local bootstrap
-- (supabase/platform/bootstrap.sql) sets app.supabase_auth_issuer on its database and it
-- is taken from there; on a hosted project the deploy step sets the row (README,
-- Deploying) and until then the Auth trigger and the token hook refuse to work.
insert into private.settings (key, value)
select 'supabase_auth_issuer', v from nullif(current_setting('app.supabase_auth_issuer', true), '') v where v is not null;

-- Read only by the Supabase Auth trigger and token hook (both definer).
create function private.setting(p_key text) returns text
language sql stable security definer
set search_path = ''
as $$ select value from private.settings where key = p_key $$;
revoke all on function private.setting(text) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ inbox

create table private.webhook_inbox (
  provider text not null,
  event_id text not null,
  event_type text not null,
  tenant_id uuid,
  outcome text not null default 'applied' check (outcome in ('applied', 'ignored')),
  received_at timestamptz not null default now(),
  primary key (provider, event_id)
);
-- The webhook handlers run as service_role (verified, trusted path).
grant select, insert, update on private.webhook_inbox to service_role;

-- ------------------------------------------------------------------ identities

-- When an identity provider deletes a person: their memberships and this identity go,
-- the person is marked deleted; their tickets and the audit trail stay.
create function private.retire_identity(p_issuer text, p_subject text) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid;
begin
  select i.user_id into v_user from public.user_identities i where i.issuer = p_issuer and i.subject = p_subject;
  if v_user is null then
    return false;
  end if;
  delete from public.memberships where user_id = v_user;
  delete from public.user_identities where issuer = p_issuer and subject = p_subject;
  update public.users set status = 'deleted', deleted_at = now() where id = v_user;
  return true;
end;
$$;
revoke all on function private.retire_identity(text, text) from public, anon, authenticated;
grant execute on function private.retire_identity(text, text) to service_role;

-- ------------------------------------------------------------------ Supabase Auth

-- The documented pattern: a trigger on auth.users (owned by the auth schema's table, the
-- function lives here) creates and updates the platform user and its identity mapping.
-- A deleted auth user keeps their tickets and history: the person is marked deleted,
-- their memberships and this identity go.
create function private.sync_auth_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_issuer text := private.setting('supabase_auth_issuer');
  v_user uuid;
  v_meta jsonb := coalesce(new.raw_user_meta_data, '{}');
begin
  if v_issuer is null then
    raise exception 'private.settings has no supabase_auth_issuer: Supabase Auth users cannot be mapped'
      using hint = 'set it to https://<ref>.supabase.co/auth/v1 (README, Deploying to a hosted project)';
  end if;
  perform set_config('request.jwt.claims', '{"role":"service_role"}', true);
  if tg_op = 'DELETE' or new.deleted_at is not null then
    perform private.retire_identity(v_issuer, old.id::text);
    return null;
  end if;
  -- Only a confirmed address names a person: an unconfirmed sign-up with someone
  -- else's e-mail must not become (or link to) them. Phone-only and anonymous sign-ins
  -- get a platform user with their first confirmed e-mail.
  if new.email is null or new.email_confirmed_at is null then
    return null;
  end if;
  select i.user_id into v_user from public.user_identities i where i.issuer = v_issuer and i.subject = new.id::text;
  if v_user is null then
    select u.id into v_user from public.users u where lower(u.email) = lower(new.email);
    -- Platform admins are never linked automatically: an operator maps them.
    if v_user is not null and exists (select 1 from public.platform_admins p where p.user_id = v_user) then
      return null;
    end if;
  end if;
  if v_user is null then
    insert into public.users (id, email, first_name, last_name, display_name, avatar_url)
    values (new.id, lower(new.email), v_meta ->> 'first_name', v_meta ->> 'last_name',
            coalesce(v_meta ->> 'full_name', v_meta ->> 'name'), v_meta ->> 'avatar_url')
    returning id into v_user;
  else
    update public.users set
      email = lower(new.email),
      first_name = coalesce(v_meta ->> 'first_name', first_name),
      last_name = coalesce(v_meta ->> 'last_name', last_name),
      display_name = coalesce(v_meta ->> 'full_name', v_meta ->> 'name', display_name),
      avatar_url = coalesce(v_meta ->> 'avatar_url', avatar_url)
    where id = v_user;
  end if;
  insert into public.user_identities (issuer, subject, user_id) values (v_issuer, new.id::text, v_user)
  on conflict (issuer, subject) do nothing;
  return null;
end;
$$;
revoke all on function private.sync_auth_user() from public, anon, authenticated;
create trigger sync_platform_user after insert or update of email, email_confirmed_at, raw_user_meta_data, deleted_at or delete on auth.users
  for each row execute function private.sync_auth_user();

-- Supabase Auth's custom access token hook: Supabase tokens carry the same tenant
-- claims as Clerk's — the active tenant (app_metadata.tenant_id if the person is a
-- member there, else their oldest membership) and their role in it. Configure it as
-- pg-functions://postgres/private/custom_access_token_hook.
create function private.custom_access_token_hook(event jsonb) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := coalesce(event -> 'claims', '{}');
  v_wanted text := v_claims -> 'app_metadata' ->> 'tenant_id';
  v_member record;
  v_issuer text := private.setting('supabase_auth_issuer');
begin
  if v_issuer is null then
    raise exception 'private.settings has no supabase_auth_issuer: tokens cannot carry tenant claims'
      using hint = 'set it to https://<ref>.supabase.co/auth/v1 (README, Deploying to a hosted project)';
  end if;
  select m.tenant_id, m.role into v_member
  from public.user_identities i
  join public.memberships m on m.user_id = i.user_id
  join public.tenants t on t.id = m.tenant_id and t.status <> 'deleted'
  where i.issuer = v_issuer and i.subject = event ->> 'user_id'
  order by (m.tenant_id::text = v_wanted) desc, m.created_at
  limit 1;
  if v_member.tenant_id is not null then
    v_claims := v_claims || jsonb_build_object('tenant_id', v_member.tenant_id, 'tenant_role', v_member.role);
  else
    v_claims := v_claims - 'tenant_id' - 'tenant_role';
  end if;
  return jsonb_build_object('claims', v_claims);
end;
$$;
revoke all on function private.custom_access_token_hook(jsonb) from public, anon, authenticated;
do $$
begin
  -- Hosted projects run hooks as supabase_auth_admin; the local stack has no such role.
  if exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    grant usage on schema private to supabase_auth_admin;
    grant execute on function private.custom_access_token_hook(jsonb) to supabase_auth_admin;
  end if;
end
$$;
