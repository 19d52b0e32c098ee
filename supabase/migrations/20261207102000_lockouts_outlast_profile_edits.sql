-- A person a platform admin marked deleted stays locked out when they edit their profile
-- (review, issue 14).
--
-- Retiring a person (their last login deleted: private.retire_identity) marks them
-- `deleted` with no logins and no memberships left, and a retired person who signs up
-- again is active (20261206043000). But any sync of a login brought a `deleted` person
-- back: a platform admin's lockout (`status = 'deleted'` through the API, which keeps
-- their logins and memberships) was undone by the person editing their own name in
-- Supabase Auth (the trigger runs on every update of the auth user) or in Clerk
-- (user.updated), every membership and role with it. Now only a person with no login
-- left, a login being linked to them by their confirmed address, comes back.
--
-- And a confirmed change of address to one another person here holds (a retired
-- person's keeps theirs) made the auth user's update fail on the unique address, an
-- opaque Auth error every time; the person now keeps their address here, as Clerk's
-- sync does.

-- Redefined (20261206043000_people_retired_with_their_last_login.sql): back only with no
-- login left; an address another person holds is not taken.
create or replace function private.sync_auth_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_issuer text := private.setting('supabase_auth_issuer');
  v_user uuid;
  v_meta jsonb := coalesce(new.raw_user_meta_data, '{}');
  v_email text;
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
  v_email := lower(new.email);
  select i.user_id into v_user from public.user_identities i where i.issuer = v_issuer and i.subject = new.id::text;
  if v_user is null then
    select u.id into v_user from public.users u where lower(u.email) = v_email;
    -- Platform admins are never linked automatically: an operator maps them.
    if v_user is not null and exists (select 1 from public.platform_admins p where p.user_id = v_user) then
      return null;
    end if;
  end if;
  if v_user is null then
    insert into public.users (id, email, first_name, last_name, display_name, avatar_url)
    values (new.id, v_email, v_meta ->> 'first_name', v_meta ->> 'last_name',
            coalesce(v_meta ->> 'full_name', v_meta ->> 'name'), v_meta ->> 'avatar_url')
    returning id into v_user;
  else
    -- A person retired earlier (every login of theirs deleted) who signs up again with
    -- the same confirmed address is back, as Clerk's user.created does. One with a login
    -- left was marked deleted (or disabled) by a platform admin, and stays so.
    update public.users u set
      status = case when u.status = 'deleted' and not exists (select 1 from public.user_identities i where i.user_id = u.id)
                    then 'active' else u.status end,
      deleted_at = case when u.status = 'deleted' and not exists (select 1 from public.user_identities i where i.user_id = u.id)
                        then null else u.deleted_at end,
      -- An address another person here holds stays theirs: this person keeps theirs.
      email = case when exists (select 1 from public.users o where lower(o.email) = v_email and o.id <> u.id)
                   then u.email else v_email end,
      first_name = coalesce(v_meta ->> 'first_name', u.first_name),
      last_name = coalesce(v_meta ->> 'last_name', u.last_name),
      display_name = coalesce(v_meta ->> 'full_name', v_meta ->> 'name', u.display_name),
      avatar_url = coalesce(v_meta ->> 'avatar_url', u.avatar_url)
    where u.id = v_user;
  end if;
  insert into public.user_identities (issuer, subject, user_id) values (v_issuer, new.id::text, v_user)
  on conflict (issuer, subject) do nothing;
  return null;
end;
$$;
