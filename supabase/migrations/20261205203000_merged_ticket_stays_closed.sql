-- A merged ticket cannot be reopened, and says so as any refused transition does (issue
-- 14, review of the tickets function).
--
-- Merging closes the source ticket with a pointer to the one its conversation moved to.
-- Changing its status afterwards passed the transition table (closed → open is allowed
-- within the reopen window) and then broke the check "merged_into_id is null or status =
-- 'closed'": a 422 naming a constraint the caller never sent, instead of the 409
-- invalid_transition every other refused status change answers. The rule now comes
-- first, with nothing allowed and the ticket to continue in.

create function private.merged_ticket_stays_closed() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'A merged ticket stays closed; its conversation continues in ticket %', old.merged_into_id
    using errcode = 'PT409',
      detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
        'from', old.status, 'to', new.status, 'allowed', '[]'::jsonb, 'merged_into_id', old.merged_into_id))::text;
end;
$$;
revoke all on function private.merged_ticket_stays_closed() from public, anon;
-- Named to fire before tickets_before_update (triggers of one event fire in name order),
-- whose transition table would let closed → open through.
create trigger merged_ticket_stays_closed before update of status on public.tickets
  for each row when (old.merged_into_id is not null and new.status is distinct from old.status)
  execute function private.merged_ticket_stays_closed();
