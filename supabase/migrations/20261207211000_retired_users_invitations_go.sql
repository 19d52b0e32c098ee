-- A person retired with their last login loses their invitations too (review of the
-- identity sync, issue 14).
--
-- 20261207141000 removed a deleted user's invitations (the accepted ones and those
-- waiting for their address, in every tenant) when the `public.users` row is deleted.
-- But neither Clerk's user.deleted nor Supabase Auth's user deletion deletes the row: both
-- retire the person (private.retire_identity: logins and memberships go, the row stays
-- for the records that name them), so their address stayed in every tenant that had
-- invited them, readable by its admins, for good. The retirement now removes them too.

-- Redefined (20261206046000_stored_sizes_review.sql): the invitations go.
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
  -- Two logins of one person deleted at once each see the other's still there: the
  -- person's row orders them, so the second sees the first gone and retires the person.
  perform 1 from public.users u where u.id = v_user for no key update;
  delete from public.user_identities where issuer = p_issuer and subject = p_subject;
  -- Another login of theirs remains (Clerk beside Supabase Auth): only this one goes.
  if exists (select 1 from public.user_identities i where i.user_id = v_user) then
    return true;
  end if;
  delete from public.memberships where user_id = v_user;
  -- Their invitations go, in every tenant: the ones they accepted and the ones waiting
  -- for their address (as when the row itself is deleted, 20261207141000).
  delete from public.invitations i where i.accepted_by = v_user;
  delete from public.invitations i
  where i.accepted_at is null and lower(i.email) = (select lower(u.email) from public.users u where u.id = v_user);
  -- Someone a platform admin disabled stays disabled (a new sign-up brings back only the
  -- retired, not the disabled).
  update public.users set status = case when status = 'disabled' then 'disabled' else 'deleted' end,
                          deleted_at = case when status = 'disabled' then deleted_at else now() end
  where id = v_user;
  return true;
end;
$$;
