-- An invitation sent while its sender is being disabled, or losing the platform admin
-- role, survived: the cancelling triggers (20261206142000) delete the pending invitations
-- they see, and one inserted meanwhile, checked on a snapshot that still showed the sender
-- active (or a platform admin), was not among them. As for a demotion (20261205212000),
-- the insert now reads what its sender's right rests on under a share lock, waiting for a
-- change under way and seeing its outcome: their own user row (active) first, then their
-- admin membership of the tenant, and, with no membership, their platform admin row. A
-- person's retirement (private.retire_identity) and deletion take the user row before
-- the memberships too, so neither can deadlock with an invitation of theirs.

-- Redefined (20261205212000_invitation_sender_still_admin.sql): the sender's user row and
-- platform role are waited for too.
create or replace function private.invitation_sender_still_admin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
  v_admin boolean; -- the sender's right to invite here
begin
  if v_user is null then
    return new; -- trusted paths (the service role, migrations)
  end if;
  perform 1 from public.users u where u.id = v_user and u.status = 'active' for share;
  if not found then
    v_admin := false; -- disabled (or retired): no longer sends anything
  else
    perform 1 from public.memberships m
    where m.tenant_id = new.tenant_id and m.user_id = v_user and m.role = 'admin'
    for share;
    v_admin := found;
    if not v_admin then
      perform 1 from public.platform_admins p where p.user_id = v_user for share;
      v_admin := found;
    end if;
  end if;
  if not v_admin then
    raise exception 'Only admins of the tenant invite people' using errcode = 'PT403';
  end if;
  return new;
end;
$$;
