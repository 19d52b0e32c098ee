-- A member demoted to customer keeps no staff notifications.
--
-- A demotion to `user` drops the person's follows (20261202141300), so no new staff
-- notification reaches them; but those they already had stayed readable, on both paths
-- and over realtime: internal notes' (`note.created`), mentions in notes, assignments and
-- every change of tickets they worked as staff and can no longer see — ticket and note
-- message ids, who did what. On the demotion they are now deleted: every notification of
-- theirs in the tenant about a ticket they did not file, and those about internal notes
-- and mentions on any ticket. What is left is what a customer is told about their own
-- tickets.

create function private.drop_staff_notifications_on_demotion() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role = 'user' and old.role <> 'user' then
    delete from public.notifications n
    where n.tenant_id = new.tenant_id and n.user_id = new.user_id
      and (n.type in ('note.created', 'mentioned') or n.ticket_id is null
           or not exists (select 1 from public.tickets t
                          where t.tenant_id = n.tenant_id and t.id = n.ticket_id and t.created_by = new.user_id));
  end if;
  return null;
end;
$$;
revoke all on function private.drop_staff_notifications_on_demotion() from public, anon, authenticated;
create trigger drop_staff_notifications_on_demotion after update of role on public.memberships
  for each row execute function private.drop_staff_notifications_on_demotion();
