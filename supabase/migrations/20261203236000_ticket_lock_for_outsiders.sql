-- A new message or attachment locks its ticket only for people acting in its tenant
-- (issues 9 and 14; as 20261203234000_plan_checks_for_outsiders.sql).
--
-- private.lock_parent_ticket is a definer before-row trigger: it ran before the policy's
-- WITH CHECK, so anyone signed in who inserted a message or an attachment under another
-- tenant's ticket id first locked that ticket (for no key update) and was then refused.
-- Whether the insert waited told that the ticket existed and was being written; and the
-- lock held writers of the ticket back until the refusal. (Its comment held that refused
-- callers never take the lock: the invoker triggers before it refuse the tenant's own
-- people, not outsiders, whose role there is none.) Now an API caller outside the tenant
-- takes no lock and the policy refuses the row.

-- Redefined (20261126100900_tickets_rules.sql): no lock for an API caller outside the tenant.
create or replace function private.lock_parent_ticket() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  perform 1 from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for no key update;
  return new;
end;
$$;
