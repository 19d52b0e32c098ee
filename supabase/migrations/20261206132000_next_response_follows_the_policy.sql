-- The next-response clock follows the ticket's policy when its priority or team changes.
--
-- A priority or team change computes the first-response and resolution due dates again
-- from the policy that now governs the ticket (private.apply_sla), but the next-response
-- clock (started by each customer reply, 20261202050200) kept the old policy's time: an
-- unanswered customer reply on a ticket raised from low (a 4-hour next response) to
-- urgent (15 minutes) was still due four hours after it, and a ticket moved to a team
-- whose policy has no next-response target was breached by the old one.
--
-- What the clock runs from is now kept, as the due dates keep created_at and
-- sla_paused_minutes: private.ticket_replies_owed holds, per ticket, the customer reply
-- staff owe an answer to (set by every reply from the customer's side whatever the
-- policy, removed by a staff reply) and the time the ticket has waited on the customer
-- since. A priority or team change (tickets_sla_next_response) gives the clock the new
-- policy's target from that reply plus that wait, or stops it where the policy has none
-- or no answer is owed. Kept rather than worked out from the messages and the old
-- policy at the change, so neither a policy edited since the reply, nor an agent demoted
-- since answering, nor messages moved in by a merge change the answer. Kept beside the
-- ticket rather than on it: a reply then changes no more of the ticket row than before
-- (no ticket.updated event, automation run or audit entry where none was).
--
-- Also: a wait pushes the next-response due time only by its part after the reply owed
-- (a follower's reply while the ticket waited restarted the clock without ending the
-- wait, and the whole wait was added on top). A clock that starts or stops sheds a breach
-- recorded on an earlier one, as the message trigger does: a stale mark would keep the
-- sweep from the new clock.

create table private.ticket_replies_owed (
  tenant_id uuid not null,
  ticket_id uuid not null,
  -- When the customer reply staff owe an answer to came; the next-response clock runs from it.
  since timestamptz not null,
  -- Business minutes the ticket has waited on the customer (pending) since then.
  paused_minutes int not null default 0 check (paused_minutes >= 0),
  primary key (tenant_id, ticket_id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
-- Private schema, not exposed; only the definer triggers below touch it.
alter table private.ticket_replies_owed enable row level security;
revoke all on private.ticket_replies_owed from public, anon, authenticated, service_role;

-- Existing tickets, read once. Under a policy with a next-response target the clock says
-- it: a reply is owed while it runs, from the latest public message with an author, and
-- the wait is how far pauses pushed it (at most the ticket's whole wait: a clock left
-- on an earlier priority's time is not a wait). Under none, the latest public message
-- is owed when its author is the requester or not staff today; one without an author (its
-- account deleted since, or imported) is not: no clock is started that may already be past.
-- backfill:begin
insert into private.ticket_replies_owed (tenant_id, ticket_id, since, paused_minutes)
select t.tenant_id, t.id, m.created_at,
       case when t.next_response_due_at is null or (s.p).next_response_minutes is null then 0
         else least(t.sla_paused_minutes, private.business_minutes_between(
           case when (s.p).business_hours is null then m.created_at + make_interval(mins => (s.p).next_response_minutes)
                else private.add_business_minutes(m.created_at, (s.p).next_response_minutes, (s.p).business_hours) end,
           t.next_response_due_at, (s.p).business_hours)) end
from public.tickets t
cross join lateral (select private.sla_policy_for(t.tenant_id, t.team_id, t.priority) as p) s
cross join lateral (
  select x.created_at, x.author_id from public.ticket_messages x
  where x.tenant_id = t.tenant_id and x.ticket_id = t.id and x.type = 'message'
    and (t.next_response_due_at is null or x.author_id is not null)
  order by x.created_at desc, x.id desc
  limit 1
) m
where case when (s.p).next_response_minutes is not null then t.next_response_due_at is not null
  else m.author_id is not null and (m.author_id = t.created_by or not (
    exists (select 1 from public.memberships ms
            where ms.tenant_id = t.tenant_id and ms.user_id = m.author_id and ms.role in ('agent', 'admin'))
    or exists (select 1 from public.platform_admins pa where pa.user_id = m.author_id))) end
on conflict (tenant_id, ticket_id) do nothing;
-- backfill:end

-- Redefined (20261202141000_sla_policies_per_team.sql): the reply owed is kept.
create or replace function private.ticket_messages_after_insert() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_staff boolean;
  v_policy public.sla_policies;
  v_next_set boolean := false;
  v_next_due timestamptz;
begin
  select * into v_ticket from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for no key update;
  -- Only public replies with an author count; notes, system and imported messages
  -- leave v_staff null and fall through to the activity touch.
  if new.type = 'message' and new.author_id is not null then
    v_staff := exists (
      select 1 from public.memberships m
      where m.tenant_id = new.tenant_id and m.user_id = new.author_id and m.role in ('agent', 'admin')
    ) or exists (select 1 from public.platform_admins p where p.user_id = new.author_id);
  end if;
  -- The reply owed is kept before the ticket's update below, which may end a wait
  -- (tickets_sla_pause counts only the part after the reply owed).
  if v_staff and new.author_id is distinct from v_ticket.created_by then
    v_next_set := v_ticket.next_response_due_at is not null;
    v_next_due := null;
    delete from private.ticket_replies_owed o where o.tenant_id = new.tenant_id and o.ticket_id = new.ticket_id;
  elsif v_staff is not null then
    -- Owed whatever the policy: a policy with a target that comes to govern the ticket
    -- later runs its clock from this reply (tickets_sla_next_response).
    insert into private.ticket_replies_owed (tenant_id, ticket_id, since) values (new.tenant_id, new.ticket_id, now())
    on conflict (tenant_id, ticket_id) do update set since = excluded.since, paused_minutes = 0;
    v_policy := private.sla_policy_for(new.tenant_id, v_ticket.team_id, v_ticket.priority);
    if v_policy.next_response_minutes is not null then
      v_next_set := true;
      v_next_due := case when v_policy.business_hours is null
        then now() + make_interval(mins => v_policy.next_response_minutes)
        else private.add_business_minutes(now(), v_policy.next_response_minutes, v_policy.business_hours) end;
    end if;
  end if;
  update public.tickets set
    first_response_at = case
      when v_staff and new.author_id is distinct from v_ticket.created_by and v_ticket.first_response_at is null
      then new.created_at else first_response_at end,
    status = case
      when v_staff is not null and new.author_id = v_ticket.created_by and v_ticket.status = 'pending'
      then 'open' else status end,
    next_response_due_at = case when v_next_set then v_next_due else next_response_due_at end,
    sla_next_response_breached_at = case when v_next_set then null else sla_next_response_breached_at end,
    updated_at = now()
  where tenant_id = new.tenant_id and id = new.ticket_id;
  return null;
end;
$$;
revoke all on function private.ticket_messages_after_insert() from public, anon;

-- Redefined (20261206053000_pending_resolved_keeps_its_wait.sql): a wait counts for the
-- next-response clock from the reply owed on, and is kept with it; the clock of an
-- update that changes priority or team is tickets_sla_next_response's, the wait this
-- update ends included (pushing it here too would count that wait twice whenever the
-- clock computed again equals the old one).
create or replace function private.tickets_sla_pause() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_hours jsonb;
  v_minutes int;
  v_since timestamptz;
  v_owed_minutes int;
begin
  if new.status = 'pending' and new.sla_paused_at is null then
    new.sla_paused_at := now();
  elsif new.status <> 'pending' and old.sla_paused_at is not null then
    v_hours := (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).business_hours;
    v_minutes := private.business_minutes_between(old.sla_paused_at, now(), v_hours);
    if v_minutes > 0 then
      if new.first_response_at is null and new.first_response_due_at is not null then
        new.first_response_due_at := case when v_hours is null
          then new.first_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.first_response_due_at, v_minutes, v_hours) end;
      end if;
      -- A ticket resolved straight from pending (its resolved_at set by
      -- tickets_before_update, which runs first) still had its clock stopped: reopened,
      -- its due date must not count the wait.
      if old.resolved_at is null and new.due_date is not null then
        new.due_date := case when v_hours is null
          then new.due_date + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.due_date, v_minutes, v_hours) end;
      end if;
      -- The next-response clock runs from the reply owed: only the part of the wait
      -- after it counts (a follower's reply while the ticket waited restarted the clock
      -- without ending the wait), kept with the reply for a later change of policy.
      select o.since into v_since from private.ticket_replies_owed o
      where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      v_owed_minutes := case when v_since is null then v_minutes
        else private.business_minutes_between(greatest(old.sla_paused_at, v_since), now(), v_hours) end;
      if v_since is not null and v_owed_minutes > 0 then
        update private.ticket_replies_owed o set paused_minutes = o.paused_minutes + v_owed_minutes
        where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      end if;
      -- A customer reply that ends the wait restarts this clock in the same statement:
      -- only a due time set before the pause moves. A change of priority or team has
      -- computed it again, this wait included (tickets_sla_next_response).
      if new.next_response_due_at is not null and new.next_response_due_at is not distinct from old.next_response_due_at
         and new.priority is not distinct from old.priority and new.team_id is not distinct from old.team_id
         and v_owed_minutes > 0 then
        new.next_response_due_at := case when v_hours is null
          then new.next_response_due_at + make_interval(mins => v_owed_minutes)
          else private.add_business_minutes(new.next_response_due_at, v_owed_minutes, v_hours) end;
      end if;
      new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
    end if;
    new.sla_paused_at := null;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_sla_pause() from public, anon, authenticated;

-- A priority or team change: the next-response clock under the policy that governs the
-- ticket now. An update that sets next_response_due_at itself keeps it, and one that
-- tickets_before_update stopped (no policy any more) stays stopped.
create function private.tickets_sla_next_response() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_policy public.sla_policies;
  v_owed private.ticket_replies_owed;
  v_waited int;
begin
  if new.next_response_due_at is not distinct from old.next_response_due_at then
    v_policy := private.sla_policy_for(new.tenant_id, new.team_id, new.priority);
    select * into v_owed from private.ticket_replies_owed o where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
    if v_policy.next_response_minutes is null or v_owed.since is null then
      new.next_response_due_at := null;
    else
      v_waited := v_owed.paused_minutes;
      -- A wait this update ends (tickets_sla_pause, next by name, keeps it only after).
      if old.sla_paused_at is not null and new.status <> 'pending' then
        v_waited := v_waited + private.business_minutes_between(
          greatest(old.sla_paused_at, v_owed.since), now(), v_policy.business_hours);
      end if;
      new.next_response_due_at := case when v_policy.business_hours is null
        then v_owed.since + make_interval(mins => v_policy.next_response_minutes + v_waited)
        else private.add_business_minutes(v_owed.since, v_policy.next_response_minutes + v_waited,
                                          v_policy.business_hours) end;
    end if;
  end if;
  if new.next_response_due_at is null or old.next_response_due_at is null then
    new.sla_next_response_breached_at := null; -- stopped, or a new clock
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_sla_next_response() from public, anon, authenticated;
-- Named to fire after tickets_before_update (which stops the clock when no policy governs
-- the ticket any more) and before tickets_sla_pause (triggers fire by name).
create trigger tickets_sla_next_response before update on public.tickets
for each row when (new.priority is distinct from old.priority or new.team_id is distinct from old.team_id)
execute function private.tickets_sla_next_response();
