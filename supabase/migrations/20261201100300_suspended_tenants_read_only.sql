-- Issue 9: a suspended tenant is read-only on the direct path too. Every insert, update
-- and delete policy was swept for the writable-tenant condition
-- (private.tenant_ids(role, true)); two lacked it:
--
-- ticket_messages_update checked only the author, so a message was edited in a
-- suspended tenant — and by a former member, in a tenant they had left. The author now
-- edits their own message only in a tenant they may write in, on a ticket they still
-- see, and a note only while they are staff.
alter policy ticket_messages_update on public.ticket_messages
  using (
    author_id = (select private.current_user_id()) and type <> 'system'
    and tenant_id = any ((select private.tenant_ids('user', true))::uuid[])
    and (type <> 'note' or tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
    and exists (select 1 from public.tickets t where t.tenant_id = ticket_messages.tenant_id and t.id = ticket_messages.ticket_id)
  )
  with check (
    author_id = (select private.current_user_id()) and type <> 'system'
    and tenant_id = any ((select private.tenant_ids('user', true))::uuid[])
    and (type <> 'note' or tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );

-- memberships_delete let anyone leave a tenant whatever its state: leaving is a write
-- to the tenant like any other, refused while it is suspended.
alter policy memberships_delete on public.memberships
  using (
    (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
    or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
  );
