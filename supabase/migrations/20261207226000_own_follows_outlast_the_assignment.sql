-- A follow of one's own, or by a mention, outlasts the assignment it coincides with
-- (review of the ticket core, issue 14).
--
-- A ticket's assignee follows it with reason `assigned`, which a reassignment removes.
-- The assignee following it by hand as well (to keep following after a hand-off), or
-- mentioned in a note, met that row: the insert did nothing (200 "already a follower",
-- the mention's insert on conflict) and the reason stayed `assigned`, so the next
-- reassignment took the follow away — the notifications with it and, off the ticket's
-- team, the sight of the ticket — though the README says a follow of one's own, or by a
-- mention, stays. Such an insert now makes the existing follow its own: reason and adder
-- become the insert's. It runs before the insert's conflict and its row checks (policy
-- and ticket_followers_check, which raise): a follow the caller may not add changes
-- nothing, and a direct insert the unique key refuses (PostgREST's 409) takes the change
-- back with it.

create function private.ticket_followers_own_follow() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.ticket_followers f set reason = new.reason, added_by = new.added_by
  where f.tenant_id = new.tenant_id and f.ticket_id = new.ticket_id and f.user_id = new.user_id
    and f.reason = 'assigned';
  return new;
end;
$$;
revoke all on function private.ticket_followers_own_follow() from public, anon, authenticated;

-- BEFORE triggers fire by name: after ticket_followers_check, which fills the adder in.
create trigger ticket_followers_own_follow before insert on public.ticket_followers
  for each row when (new.reason in ('manual', 'mentioned'))
  execute function private.ticket_followers_own_follow();
