-- An invitation that cannot be accepted says why to the person it is addressed to (issue 14
-- review of tenants and members).
--
-- accept_invitation answered 404 "invitation not found" to its own addressee when the
-- invitation had expired or its tenant was suspended or deleted: the invitee, who had
-- seen it in /me a moment before, was told it does not exist, and could not tell whether
-- to ask for a new one or wait. Now, to the addressee only (the e-mail matched, as for
-- already_accepted), an expired one is 410 `invitation_expired` and one whose tenant is
-- not active is 409 `tenant_not_active`; anyone else, and an unknown id, still gets 404.

-- Redefined (20261126100600_tenant_core_operations.sql): the refusals named.
create or replace function private.accept_invitation(p_invitation_id uuid)
returns table (tenant_id uuid, role text)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
  v_inv public.invitations;
  v_mine record;
begin
  select i.* into v_inv
  from public.invitations i
  join public.users u on u.id = v_user and lower(u.email) = i.email
  join public.tenants t on t.id = i.tenant_id and t.status = 'active'
  where i.id = p_invitation_id and i.accepted_at is null and i.expires_at > now()
  for update of i;
  if v_inv.id is null then
    -- Why, for the addressee only: to anyone else the invitation stays unknown.
    select i.accepted_at is not null as accepted, i.expires_at <= now() as expired, t.status as tenant_status
    into v_mine
    from public.invitations i
    join public.users u on u.id = v_user and lower(u.email) = i.email
    join public.tenants t on t.id = i.tenant_id
    where i.id = p_invitation_id;
    if v_mine.accepted then
      raise exception 'You have already accepted this invitation'
        using errcode = 'PT409', detail = '{"code": "already_accepted"}';
    elsif v_mine.expired then
      raise exception 'This invitation has expired; ask an admin of the tenant for a new one'
        using errcode = 'PT410', detail = '{"code": "invitation_expired"}';
    elsif v_mine.tenant_status <> 'active' then
      raise exception 'The tenant of this invitation is not active; it can be accepted once the tenant is resumed'
        using errcode = 'PT409', detail = '{"code": "tenant_not_active"}';
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
