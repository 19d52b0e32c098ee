-- A person is retired when their last login goes, and comes back when they sign up again.
--
-- Deleting one of a person's logins (their Supabase Auth account, while they also sign in
-- through Clerk) retired the whole person: their memberships in every tenant went and they
-- were marked deleted, so the Clerk login was refused too. And signing up again through
-- Supabase Auth with the same confirmed address linked the new login to the retired person
-- without making them active, so every request was 403 `unknown_user` for good (Clerk's
-- user.created reactivates). Now only the deleted login goes while another remains, and a
-- retired person who signs up again is active (with no memberships: those went with them).

-- Redefined (20261126101700_inbound_webhooks.sql): the person only with their last login.
create or replace function private.retire_identity(p_issuer text, p_subject text) returns boolean
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
  delete from public.user_identities where issuer = p_issuer and subject = p_subject;
  -- Another login of theirs remains (Clerk beside Supabase Auth): only this one goes.
  if exists (select 1 from public.user_identities i where i.user_id = v_user) then
    return true;
  end if;
  delete from public.memberships where user_id = v_user;
  update public.users set status = 'deleted', deleted_at = now() where id = v_user;
  return true;
end;
$$;

-- Redefined (20261126101700_inbound_webhooks.sql): a retired person signing up again is back.
create or replace function private.sync_auth_user() returns trigger
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
    -- A person retired earlier (every login of theirs deleted) who signs up again with
    -- the same confirmed address is back, as Clerk's user.created does; one a platform
    -- admin disabled stays disabled.
    update public.users set
      status = case when status = 'deleted' then 'active' else status end,
      deleted_at = case when status = 'deleted' then null else deleted_at end,
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
