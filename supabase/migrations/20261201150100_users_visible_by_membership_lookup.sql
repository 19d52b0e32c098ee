-- A co-member's user row is found by a lookup of their memberships, not by collecting
-- every membership the caller may see.
--
-- users_select allowed `id in (select m.user_id from public.memberships m)`: the
-- planner hashed that subquery once per statement, which read every membership row on
-- the platform through memberships' own policy, and then tested every user row
-- against the hash. Listing a tenant's four members threw away 10,004 membership rows
-- and 10,004 user rows on the mid-size dataset of tests/schema/endpoint-plans.test.ts,
-- and grows with the platform, not the tenant. As a correlated EXISTS, each user row
-- the query reaches costs one probe of memberships_user_id_idx (still under the
-- memberships policy, so who may see whom is unchanged), and a query that starts from
-- a tenant's memberships reaches only their users.
drop policy users_select on public.users;
create policy users_select on public.users for select to authenticated
  using (
    id = (select private.current_user_id())
    or (select private.is_platform_admin())
    or (deleted_at is null and exists (select 1 from public.memberships m where m.user_id = users.id))
  );
