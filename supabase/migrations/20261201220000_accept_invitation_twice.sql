-- Accepting an invitation a second time says so (409, PT409) instead of "not found":
-- the invitee already joined, and a retried request (a lost response, a double click)
-- should learn that. Only the invitee sees the difference: for anyone else an
-- invitation that is not theirs stays "not found", accepted or not.
create or replace function private.accept_invitation(p_invitation_id uuid)
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
      raise exception 'invitation already accepted' using errcode = 'PT409';
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
