-- Notifications follow what a person may see (review, issue 14).
--
-- 1. A follower's notification is written under a share lock on their membership. It
--    read the role without a lock: an internal note added while an admin demoted the
--    follower to customer wrote a `note.created` for them that the demotion's clean-up
--    (20261206042000), which could not see it yet, left behind, readable by the customer
--    on both paths and over realtime. Now a follower whose membership is being changed
--    right then is skipped (not waited for: the note holds its ticket, which the change
--    may be waiting for to unassign them, as for follows in 20261206161000), and a change
--    that comes after the lock waits for the note, then deletes what it wrote.
-- 2. A customer who stops following a ticket they did not file (the requester removes
--    them, they unfollow, or the follow goes with a demotion) loses sight of it, and now
--    its notifications too: their `data` (assignees, status changes, message ids) and the
--    unread count stayed readable.
-- 3. A tenant turning `settings.customer_followers` off cuts its customers off the
--    tickets they follow but did not file: their notifications about them go as well.

-- Redefined (20261205160000_row_trigger_helpers_planned_once.sql): the membership read
-- under a share lock; one being changed now is skipped.
create or replace function private.notify_followers(p_tenant_id uuid, p_ticket_id uuid, p_type text, p_actor uuid, p_data jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  insert into public.notifications (tenant_id, user_id, ticket_id, type, actor_user_id, data)
  select f.tenant_id, f.user_id, f.ticket_id, p_type, p_actor, p_data
  from public.ticket_followers f
  join public.memberships m on m.tenant_id = f.tenant_id and m.user_id = f.user_id
  where f.tenant_id = p_tenant_id and f.ticket_id = p_ticket_id and f.user_id is distinct from p_actor
    and (m.role in ('agent', 'admin')
         or (p_type <> 'note.created'
             and exists (select 1 from public.tenants t where t.id = p_tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb)))
  for share of m skip locked;
end;
$$;

-- A customer's follow of a ticket they did not file ends: its notifications go with it.
-- Staff keep theirs (they still see the ticket).
create function private.drop_notifications_with_follow() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from public.notifications n
  using old_rows o
  join public.memberships m on m.tenant_id = o.tenant_id and m.user_id = o.user_id and m.role = 'user'
  where n.tenant_id = o.tenant_id and n.user_id = o.user_id and n.ticket_id = o.ticket_id
    and not exists (select 1 from public.tickets t
                    where t.tenant_id = o.tenant_id and t.id = o.ticket_id and t.created_by = o.user_id);
  return null;
end;
$$;
revoke all on function private.drop_notifications_with_follow() from public, anon, authenticated;
create trigger drop_notifications_with_follow after delete on public.ticket_followers
  referencing old table as old_rows
  for each statement execute function private.drop_notifications_with_follow();

-- Customer followers switched off: the tenant's customers lose the notifications of the
-- tickets they follow and did not file.
create function private.drop_customer_follower_notifications() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if old.settings -> 'customer_followers' = 'true'::jsonb
     and new.settings -> 'customer_followers' is distinct from 'true'::jsonb then
    delete from public.notifications n
    using public.ticket_followers f
    join public.memberships m on m.tenant_id = f.tenant_id and m.user_id = f.user_id and m.role = 'user'
    where f.tenant_id = new.id and n.tenant_id = new.id and n.user_id = f.user_id and n.ticket_id = f.ticket_id
      and not exists (select 1 from public.tickets t
                      where t.tenant_id = f.tenant_id and t.id = f.ticket_id and t.created_by = f.user_id);
  end if;
  return null;
end;
$$;
revoke all on function private.drop_customer_follower_notifications() from public, anon, authenticated;
create trigger drop_customer_follower_notifications after update of settings on public.tenants
  for each row execute function private.drop_customer_follower_notifications();
