-- A customer sees and removes only the followers they added themselves, never staff's.
--
-- Where customers may follow (20261202141100_customer_followers.sql), a customer saw and
-- could remove every follow whose added_by was them. An assignment made inside the
-- customer's own insert (the department's team picking an assignee,
-- private.tickets_assignee_follows) records the customer's statement as having added the
-- assignee's follow (reason 'assigned'): the customer then saw which agent follows the
-- ticket ("staff followers stay internal") and could delete the follow, so the assignee
-- stopped hearing of the ticket. What a customer adds is always a manual follow of a
-- customer (ticket_followers_check), so the customer's clauses now ask for that reason.

drop policy ticket_followers_select on public.ticket_followers;
create policy ticket_followers_select on public.ticket_followers for select to authenticated
  using (
    ((tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) or (select private.is_platform_admin()))
     or (tenant_id = any ((select private.customer_follower_tenant_ids())::uuid[])
         and (user_id = (select private.current_user_id())
              or (added_by = (select private.current_user_id()) and reason = 'manual'))))
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
        and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id))
  );
