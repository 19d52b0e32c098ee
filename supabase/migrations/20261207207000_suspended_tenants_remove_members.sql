-- A suspended tenant's admins can still remove members and revoke invitations (review
-- of members and invitations).
--
-- A suspended tenant is read-only, but its members keep reading it: an agent fired while
-- the tenant was suspended (for billing, say) kept reading its tickets, internal notes
-- and customers until it was resumed, since removing them was a write the suspension
-- refused (403 tenant_suspended, and the table's delete policy admitted only writable
-- tenants). Taking access away is no change to the tenant's data, as revoking an API key
-- already is (20261205202000): the delete policies of memberships and invitations now
-- admit the tenant's admins whatever its status. Changes of role stay refused while
-- suspended, and so does a member leaving on their own (a row of the tenant's, as ever).
--
-- And a removal racing an acceptance of the removed person's invitation answered a raw
-- 55P03 (PostgREST's 500, the functions' 503 timeout): it is 503 retry now, as the
-- other member-change refusals are (20261207178000).

drop policy memberships_delete on public.memberships;
create policy memberships_delete on public.memberships for delete to authenticated
  using (
    (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
    or tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
    or (select private.is_platform_admin())
  );
drop policy invitations_delete on public.invitations;
create policy invitations_delete on public.invitations for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()));

-- Redefined (20261207125000_invitations_and_first_admins.sql): busy is 503 retry.
create or replace function private.drop_invitations_of_removed_member() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  begin
    delete from public.invitations d
    where (d.tenant_id, d.id) in (
      select i.tenant_id, i.id
      from public.invitations i
      join old_rows o on o.tenant_id = i.tenant_id
      join public.users u on u.id = o.user_id
      where lower(i.email) = lower(u.email) and i.accepted_at is null
      for update of i nowait);
  exception when lock_not_available then
    raise exception 'An invitation of the person is being accepted; retry in a moment'
      using errcode = 'PT503', detail = '{"code": "retry"}';
  end;
  return null;
end;
$$;
