-- A notification is seen only while its ticket is (review, issue 14).
--
-- A notification was readable by its person for as long as they were a member of the
-- tenant, whatever they could see of its ticket since:
-- - an internal note added while an admin demoted a follower to customer wrote a
--   `note.created` for them (the role was read without a lock) that the demotion's
--   clean-up (20261206042000), which could not see it yet, left behind;
-- - a customer follower removed by the requester, leaving, or cut off when the tenant
--   turned `settings.customer_followers` off kept every past notification about a ticket
--   they could no longer read: its `data` (assignees, status changes, message ids) and
--   the unread count.
-- Rather than chase every way a person loses sight of a ticket with a clean-up (each
-- racing the writes it must see), the select policy asks the ticket's own: a notification
-- about a ticket is readable while its person can read the ticket (the tickets policy,
-- evaluated as them), and one about an internal note or a mention in one only while they
-- are staff. On both paths and over realtime, which applies the same policy. Sight given
-- back (the setting on again, a follow restored) gives the notifications back with it. The
-- notice of a ticket's deletion stays readable by those it was written for.

alter policy notifications_select on public.notifications
  using (
    user_id = (select private.current_user_id())
    and tenant_id = any ((select private.tenant_ids('user'))::uuid[])
    and (ticket_id is null
         -- The notice that the ticket was deleted: its followers are told, though it is
         -- out of their sight now (deleted tickets are the admins').
         or type = 'deleted'
         or exists (select 1 from public.tickets t where t.tenant_id = notifications.tenant_id and t.id = notifications.ticket_id))
    and (type not in ('note.created', 'mentioned') or tenant_id = any ((select private.tenant_ids('agent'))::uuid[]))
  );
