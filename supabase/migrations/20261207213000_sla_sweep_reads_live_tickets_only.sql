-- The SLA sweep's work lists hold only tickets that can still breach (review, issue 14).
--
-- The sweep (private.run_sla_sweep, every minute) reads the tickets due, first response,
-- resolution and next response, through partial indexes that left out answered, breached
-- and deleted tickets, but kept settled and pending ones: a ticket resolved or closed
-- with no first response (closed as spam, or answered in Chatwoot before it was linked)
-- stayed in its index for good with a due time in the past, and every sweep read past
-- all of them, in every tenant, to reach the ones due: its scan grew with history. The
-- indexes now also leave out the statuses the sweep never breaches nor warns about
-- (pending, resolved, closed), the condition its queries already state, so a sweep reads
-- only tickets it acts on. A ticket leaving them (reopened, a wait ending) comes back in.

create index tickets_first_response_due_live_idx on public.tickets (first_response_due_at)
  where first_response_at is null and sla_first_response_breached_at is null and deleted_at is null
    and status not in ('pending', 'resolved', 'closed');
create index tickets_resolution_due_live_idx on public.tickets (due_date)
  where resolved_at is null and sla_resolution_breached_at is null and deleted_at is null
    and status not in ('pending', 'resolved', 'closed');
create index tickets_next_response_due_live_idx on public.tickets (next_response_due_at)
  where sla_next_response_breached_at is null and deleted_at is null
    and status not in ('pending', 'resolved', 'closed');
drop index public.tickets_first_response_due_idx;
drop index public.tickets_resolution_due_idx;
drop index public.tickets_next_response_due_idx;
