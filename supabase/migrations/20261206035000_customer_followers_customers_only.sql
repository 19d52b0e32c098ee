-- What a customer sees and removes of a ticket's followers is customers, whoever they were
-- when added; and an assignment made by a customer's own filing is added by nobody.
--
-- 20261206032000 kept the customer's clauses to the manual follows they added. A role
-- changes after the fact: an agent who added a colleague on their own ticket and was
-- demoted to customer still saw and could remove that staff follow, and a customer who
-- added a fellow customer later promoted to agent kept sight of a staff follow. The clauses
-- now also ask that the follower is no staff member of the tenant (staff memberships are
-- what a customer reads of memberships: the subquery runs under their policy).
--
-- And the assignee's follow that an assignment makes inside a customer's insert (the
-- department's team picking an assignee) named the customer as having added it, in the
-- row, the audit trail and `ticket.follower_added`'s `by`: it is now added by nobody, as
-- an assignment by the machine paths is; staff and platform admins who assign stay named.

drop policy ticket_followers_select on public.ticket_followers;
create policy ticket_followers_select on public.ticket_followers for select to authenticated
  using (
    ((tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) or (select private.is_platform_admin()))
     or (tenant_id = any ((select private.customer_follower_tenant_ids())::uuid[])
         and (user_id = (select private.current_user_id())
              or (added_by = (select private.current_user_id()) and reason = 'manual'
                  and not exists (select 1 from public.memberships m
                                  where m.tenant_id = ticket_followers.tenant_id and m.user_id = ticket_followers.user_id
                                    and m.role in ('agent', 'admin'))))))
    and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id)
  );

drop policy ticket_followers_delete on public.ticket_followers;
create policy ticket_followers_delete on public.ticket_followers for delete to authenticated
  using (
    (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
    or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[])
        and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id))
    or (added_by = (select private.current_user_id()) and reason = 'manual'
        and tenant_id = any ((select private.customer_follower_tenant_ids(true))::uuid[])
        and not exists (select 1 from public.memberships m
                        where m.tenant_id = ticket_followers.tenant_id and m.user_id = ticket_followers.user_id
                          and m.role in ('agent', 'admin'))
        and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id))
  );

-- Redefined (20261202050300_followers_notifications.sql): the follow is added by the
-- assigning person only when they are staff of the tenant or a platform admin.
create or replace function private.tickets_assignee_follows() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and old.assigned_to is not null then
    delete from public.ticket_followers f
    where f.tenant_id = old.tenant_id and f.ticket_id = old.id and f.user_id = old.assigned_to and f.reason = 'assigned';
  end if;
  if new.assigned_to is not null then
    insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
    values (new.tenant_id, new.id, new.assigned_to, 'assigned',
            -- role_in: the caller's role here, 'super_admin' for a platform admin.
            case when private.role_in(new.tenant_id) in ('agent', 'admin', 'super_admin') then private.current_user_id() end)
    on conflict (tenant_id, ticket_id, user_id) do nothing;
  end if;
  return null;
end;
$$;

-- Redefined (20261202141100_customer_followers.sql): the adder is filled in for follows
-- added by hand only, so the assignment's "nobody" above stays nobody.
create or replace function private.ticket_followers_check() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text;
  v_adder_role text;
begin
  -- Someone who may not write in the tenant learns nothing about its people from which
  -- refusal comes back: this trigger runs before the policies, so it refuses as they would.
  if new.reason = 'manual' and private.current_user_id() is not null and not private.is_platform_admin()
     and not (new.tenant_id = any (private.tenant_ids('user', true))) then
    raise exception 'new row violates row-level security policy for table "ticket_followers"' using errcode = '42501';
  end if;
  select m.role into v_role from public.memberships m where m.tenant_id = new.tenant_id and m.user_id = new.user_id;
  select m.role into v_adder_role from public.memberships m
  where m.tenant_id = new.tenant_id and m.user_id = private.current_user_id();
  -- A customer where customers may not follow: refused as the policies would (this
  -- trigger runs before them), whoever they name. Only for follows added by hand: the
  -- assignment and mention triggers add staff as definer, whoever's change set them off
  -- (a customer's ticket routed and auto-assigned makes its agent a follower).
  if new.reason = 'manual' and v_adder_role = 'user' and not private.is_platform_admin() and not exists (
       select 1 from public.tenants t where t.id = new.tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb) then
    raise exception 'Customers add followers only where the tenant allows it' using errcode = '42501';
  end if;
  if v_role is null then
    -- Nobody of this tenant (another tenant's person, an unknown id): as its foreign key says.
    raise exception 'the follower must be a member of this tenant'
      using errcode = '23503', constraint = 'ticket_followers_tenant_id_user_id_fkey';
  elsif v_role in ('agent', 'admin') then
    if new.reason = 'manual' and v_adder_role = 'user' and not private.is_platform_admin() then
      raise exception 'A customer adds only other customers as followers' using errcode = 'PT409',
        detail = jsonb_build_object('code', 'not_customer', 'details', jsonb_build_object('user_id', new.user_id));
    end if;
  elsif new.reason <> 'manual' or not exists (
               select 1 from public.tenants t where t.id = new.tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb) then
    raise exception 'Only staff of the tenant can follow a ticket (and its customers where the tenant allows it)'
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_staff', 'details', jsonb_build_object('user_id', new.user_id));
  end if;
  -- A follow added by hand is the adder's; one an assignment or a mention makes names
  -- whom its trigger gives, possibly nobody.
  if new.added_by is null and new.reason = 'manual' then
    new.added_by := private.current_user_id();
  end if;
  return new;
end;
$$;
