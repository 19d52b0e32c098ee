-- An invitation is written only while its sender is still an admin of the tenant (issue
-- 14, review of 20261205200000_invitations_follow_their_admin.sql).
--
-- A demoted or removed admin's pending invitations are cancelled by the membership
-- change. An invitation inserted while that change was under way passed the insert
-- policy on the snapshot that still showed the sender as admin, and the cancelling
-- trigger, which ran before it existed, never saw it: the invitation an admin could send
-- to a second address of their own, just before losing the role, survived. The sender's
-- membership is now read FOR SHARE, which waits for a change under way and sees its
-- outcome; no longer an admin, the invitation is refused. Platform admins and trusted
-- paths (no user: the service role, migrations) invite as before.
create function private.invitation_sender_still_admin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
begin
  if v_user is null or private.is_platform_admin() then
    return new;
  end if;
  -- The membership row first (lock level 1), before this invitation is written.
  perform 1 from public.memberships m
  where m.tenant_id = new.tenant_id and m.user_id = v_user and m.role = 'admin'
  for share;
  if not found then
    raise exception 'Only admins of the tenant invite people' using errcode = 'PT403';
  end if;
  return new;
end;
$$;
revoke all on function private.invitation_sender_still_admin() from public, anon;
create trigger invitation_sender_still_admin before insert on public.invitations
  for each row execute function private.invitation_sender_still_admin();
