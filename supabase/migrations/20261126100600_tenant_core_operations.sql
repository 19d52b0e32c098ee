-- Tenant core's operations: joining a tenant by invitation, and the people a
-- super-admin names. Definer functions, each checking its caller itself.

-- ------------------------------------------------------------------ invitations

-- The invitee joins: the invitation must be theirs (their platform e-mail), pending and
-- unexpired, and its tenant not deleted. Idempotent for someone already a member.
-- Accepting it a second time says so (409 already_accepted) instead of "not found": the invitee
-- already joined, and a retried request (a lost response, a double click) should learn
-- that. Only the invitee sees the difference: for anyone else an invitation that is not
-- theirs stays "not found", accepted or not.
create function private.accept_invitation(p_invitation_id uuid)
returns table (tenant_id uuid, role text)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
  v_inv public.invitations;
begin
  select i.* into v_inv
  from public.invitations i
  join public.users u on u.id = v_user and lower(u.email) = i.email
  join public.tenants t on t.id = i.tenant_id and t.status = 'active'
  where i.id = p_invitation_id and i.accepted_at is null and i.expires_at > now()
  for update of i;
  if v_inv.id is null then
    if exists (
      select 1 from public.invitations i
      join public.users u on u.id = v_user and lower(u.email) = i.email
      where i.id = p_invitation_id and i.accepted_at is not null
    ) then
      raise exception 'You have already accepted this invitation'
        using errcode = 'PT409', detail = '{"code": "already_accepted"}';
    end if;
    raise exception 'invitation not found' using errcode = 'PT404';
  end if;
  insert into public.memberships (tenant_id, user_id, role)
  values (v_inv.tenant_id, v_user, v_inv.role)
  on conflict on constraint memberships_tenant_id_user_id_key do nothing;
  update public.invitations set accepted_at = now(), accepted_by = v_user
  where invitations.tenant_id = v_inv.tenant_id and invitations.id = v_inv.id;
  return query
    select m.tenant_id, m.role from public.memberships m
    where m.tenant_id = v_inv.tenant_id and m.user_id = v_user;
end;
$$;
revoke all on function private.accept_invitation(uuid) from public, anon;
grant execute on function private.accept_invitation(uuid) to authenticated, service_role;

-- The caller's pending invitations with their tenants' names, which the invitee may not
-- read from tenants yet.
create function private.my_invitations()
returns table (id uuid, tenant_id uuid, tenant_name text, tenant_slug text, role text, expires_at timestamptz)
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return query
    select i.id, i.tenant_id, t.name, t.slug, i.role, i.expires_at
    from public.invitations i
    join public.users u on u.id = private.current_user_id() and lower(u.email) = i.email
    join public.tenants t on t.id = i.tenant_id and t.status = 'active'
    where i.accepted_at is null and i.expires_at > now()
    order by i.created_at;
end;
$$;
revoke all on function private.my_invitations() from public, anon;
grant execute on function private.my_invitations() to authenticated, service_role;

-- ------------------------------------------------------------------ people

-- Super-admins creating a tenant name its first admin by e-mail, who may not have an
-- account yet. Platform admins only: for anyone else it would reveal who has one.
create function private.find_or_create_user(p_email text, p_first_name text default null, p_last_name text default null)
returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if not private.is_platform_admin() then
    raise exception 'only platform admins may create users' using errcode = '42501';
  end if;
  insert into public.users (email, first_name, last_name)
  values (lower(btrim(p_email)), p_first_name, p_last_name)
  on conflict (lower(email)) do nothing
  returning id into v_id;
  if v_id is null then
    select u.id into v_id from public.users u where lower(u.email) = lower(btrim(p_email));
  end if;
  return v_id;
end;
$$;
revoke all on function private.find_or_create_user(text, text, text) from public, anon;
grant execute on function private.find_or_create_user(text, text, text) to authenticated, service_role;
