-- A deleted user's invitations go with them (review, issue 14).
--
-- Deleting a platform user (`delete from public.users`: Supabase Auth's user deletion,
-- Clerk's user.deleted) kept the invitations they accepted, with their e-mail address and
-- the acceptor set null (20261206038000), and the pending invitations addressed to them in
-- other tenants: their address stayed in every tenant that had invited them, readable by
-- its admins, for good. The person's deletion now removes the invitations they accepted
-- and those still waiting for their address, while their row (and address) is readable;
-- the membership an accepted invitation made is removed by the deletion itself. The
-- invitations of people deleted before this (accepted, their acceptor gone) go here.

create function private.invitations_of_deleted_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- Both by index: invitations_accepted_by_idx, and invitations_email_idx (pending ones).
  delete from public.invitations i where i.accepted_by = old.id;
  delete from public.invitations i where i.accepted_at is null and lower(i.email) = lower(old.email);
  return old;
end;
$$;
revoke all on function private.invitations_of_deleted_user() from public, anon, authenticated;
create trigger invitations_of_deleted_user before delete on public.users
  for each row execute function private.invitations_of_deleted_user();

delete from public.invitations where accepted_at is not null and accepted_by is null;
