-- One lock order for every writer, so concurrent writers on one row queue instead of
-- deadlocking (issue 9, part 2).
--
-- THE RULE
-- Rows are locked parents first, in this order of levels, and by key within a level:
--   1. membership rows being changed (role, removal)           FOR NO KEY UPDATE (the UPDATE/DELETE)
--   2. the tenant row (keep_last_admin's guard, settings)      FOR NO KEY UPDATE
--   3. the tenant's ticket counter (creates)                   the upsert's row lock
--   4. the team row (round-robin pointer)                      FOR NO KEY UPDATE
--   5. tickets, by id (several: merge, demotion)               FOR NO KEY UPDATE
--   6. existing messages / attachments being changed, by id    FOR NO KEY UPDATE
--   7. statistics rows: ticket_counts by (status, priority), then ticket_durations by
--      (kind, bucket), net deltas only                         the upsert's row lock
--   8. the outbox: one transaction-scoped advisory lock per (tenant, ordering key),
--      then new event/delivery rows; a webhook endpoint before its deliveries
-- (the idempotency key row comes before 3).
-- Inserts lock their parent before writing anything: a new message or attachment
-- locks its ticket in a BEFORE trigger, a new ticket takes its counter, so everything
-- the transaction writes afterwards (audit rows, timeline events, deliveries) is
-- numbered in commit order for that parent. An UPDATE/DELETE locks its own row before
-- its row triggers run, so a trigger may lock only rows of later levels (or, for a
-- membership, the tenant guard); changing an existing message or attachment therefore
-- locks only that row and reads its ticket without locking it.
-- Strength: the weakest that serialises the writers. FOR NO KEY UPDATE wherever no key
-- column changes (every lock here): it conflicts with itself, not with the FOR KEY SHARE
-- that foreign-key checks take on parents, so a child insert (which key-share-locks the
-- parent) and a later lock on the same parent in the same transaction never form an
-- upgrade deadlock with another writer doing the same. FOR UPDATE is left to deletes.
-- Foreign-key checks' FOR KEY SHARE is outside the order: it conflicts only with
-- FOR UPDATE (deleting a parent or changing its key), which no hot path takes.
-- Plain reads never lock. Work queues claim with SKIP LOCKED and so never wait.
-- Why: two transactions deadlock only when each waits for a lock the other holds; if
-- every transaction takes its conflicting locks in one global order, no cycle can form.
--
-- What changed (the rest of the schema already followed the rule):
-- * ticket_messages / attachments: BEFORE INSERT locks the ticket (was: FOR UPDATE in the
--   message AFTER trigger, after the foreign key's KEY SHARE — the 146-of-200 deadlock).
-- * auto_assignee, keep_last_admin, merge_tickets, run_sla_sweep, claim_webhook_deliveries
--   (redefined with its new columns in 20261201120000_sealed_secrets_bound.sql),
--   record_webhook_attempt: FOR UPDATE → FOR NO KEY UPDATE.
-- * merge_tickets locks the source's messages and attachments (by id) after the tickets.
-- * unassign_on_demotion locks the demoted person's tickets by id before changing them.
-- * statistics: deltas are netted and applied in key order (status changes in opposite
--   directions on two tickets used to lock two counter rows in opposite orders).
-- * emit_webhook_event serialises emitters of one ordering key (message edits do not
--   lock the ticket), so deliveries of one key are numbered in commit order.
-- * record_webhook_attempt: endpoint before delivery.
-- Not yet following it: the provisioning worker's claim and fail lock a job before its
-- tenant_services row, while a desired_state change locks the service row, then the
-- job (enqueue); rare (an admin change racing a claim), a 40P01 there is retried.

-- ------------------------------------------------------------------ tickets and children

-- A new message or attachment locks its ticket first: writers of one ticket take turns
-- from here to commit. Fires after the other BEFORE triggers (name order), so callers
-- the invoker triggers refuse never take the lock.
create function private.lock_parent_ticket() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform 1 from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for no key update;
  return new;
end;
$$;
revoke all on function private.lock_parent_ticket() from public, anon, authenticated;
create trigger ticket_parent_lock before insert on public.ticket_messages
  for each row execute function private.lock_parent_ticket();
create trigger ticket_parent_lock before insert on public.attachments
  for each row execute function private.lock_parent_ticket();

-- As before, but the ticket is already locked (ticket_parent_lock), with the strength
-- the UPDATE below needs anyway.
create or replace function private.ticket_messages_after_insert() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_staff boolean;
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
  if v_staff and new.author_id is distinct from v_ticket.created_by and v_ticket.first_response_at is null then
    update public.tickets set first_response_at = new.created_at
    where tenant_id = new.tenant_id and id = new.ticket_id;
  elsif v_staff is not null and new.author_id = v_ticket.created_by and v_ticket.status = 'pending' then
    update public.tickets set status = 'open' where tenant_id = new.tenant_id and id = new.ticket_id;
  else
    update public.tickets set updated_at = now() where tenant_id = new.tenant_id and id = new.ticket_id;
  end if;
  return null;
end;
$$;

-- Round robin / least open, as before; the team row is locked FOR NO KEY UPDATE (the
-- pointer is no key), so tickets and team members referencing the team do not wait.
create or replace function private.auto_assignee(p_tenant_id uuid, p_team_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_team public.teams;
  v_pick uuid;
begin
  select * into v_team from public.teams t where t.tenant_id = p_tenant_id and t.id = p_team_id for no key update;
  if v_team.id is null or v_team.auto_assign = 'none' then
    return null;
  end if;
  if v_team.auto_assign = 'round_robin' then
    -- The next available agent after the last one picked, in a stable order.
    select tm.user_id into v_pick
    from public.team_members tm
    join public.memberships m on m.tenant_id = tm.tenant_id and m.user_id = tm.user_id
    where tm.tenant_id = p_tenant_id and tm.team_id = p_team_id
      and m.role in ('agent', 'admin') and m.available
    order by (tm.user_id <= coalesce(v_team.last_assigned_user_id, '00000000-0000-0000-0000-000000000000')), tm.user_id
    limit 1;
  else
    select tm.user_id into v_pick
    from public.team_members tm
    join public.memberships m on m.tenant_id = tm.tenant_id and m.user_id = tm.user_id
    where tm.tenant_id = p_tenant_id and tm.team_id = p_team_id
      and m.role in ('agent', 'admin') and m.available
    order by (
      select count(*) from public.tickets t
      where t.tenant_id = p_tenant_id and t.assigned_to = tm.user_id
        and t.status in ('open', 'pending', 'escalated') and t.deleted_at is null
    ), tm.user_id
    limit 1;
  end if;
  if v_pick is not null then
    update public.teams set last_assigned_user_id = v_pick where tenant_id = p_tenant_id and id = p_team_id;
  end if;
  return v_pick;
end;
$$;

-- A demoted agent keeps no assigned work: their tickets are locked by id, then changed.
create or replace function private.unassign_on_demotion() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role = 'user' and old.role <> 'user' then
    perform 1 from public.tickets t
    where t.tenant_id = new.tenant_id and t.assigned_to = new.user_id
    order by t.id for no key update;
    update public.tickets set assigned_to = null
    where tenant_id = new.tenant_id and assigned_to = new.user_id;
  end if;
  return null;
end;
$$;

-- Merging, as before; locks: both tickets by id, then the source's messages and
-- attachments by id, all FOR NO KEY UPDATE (merged_into_id and ticket_id are no keys).
create or replace function private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_source public.tickets;
  v_target public.tickets;
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin() then
    raise exception 'only staff merge tickets' using errcode = 'PT403';
  end if;
  if not private.can_see_ticket(p_tenant_id, p_source_id) or not private.can_see_ticket(p_tenant_id, p_target_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  if p_source_id = p_target_id then
    raise exception 'a ticket cannot be merged into itself' using errcode = 'PT409';
  end if;
  perform 1 from public.tickets t where t.tenant_id = p_tenant_id and t.id in (p_source_id, p_target_id)
  order by t.id for no key update;
  select * into v_source from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_source_id;
  select * into v_target from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_target_id;
  if v_source.merged_into_id is not null or v_target.merged_into_id is not null
     or v_source.deleted_at is not null or v_target.deleted_at is not null then
    raise exception 'merged or deleted tickets cannot be merged' using errcode = 'PT409';
  end if;
  if v_target.status = 'closed' then
    raise exception 'reopen the target ticket before merging into it' using errcode = 'PT409';
  end if;
  -- The conversation moves to the target, whose requester reads it: only one person's
  -- tickets are merged.
  if v_source.created_by is distinct from v_target.created_by then
    raise exception 'tickets of different requesters cannot be merged' using errcode = 'PT409';
  end if;
  perform 1 from public.ticket_messages m where m.tenant_id = p_tenant_id and m.ticket_id = p_source_id
  order by m.id for no key update;
  perform 1 from public.attachments a where a.tenant_id = p_tenant_id and a.ticket_id = p_source_id
  order by a.id for no key update;
  update public.ticket_messages set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  update public.attachments set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  update public.tickets set status = 'closed', merged_into_id = p_target_id
  where tenant_id = p_tenant_id and id = p_source_id;
  insert into public.ticket_messages (tenant_id, ticket_id, type, content) values
    (p_tenant_id, p_target_id, 'system', format('Ticket #%s was merged into this ticket.', v_source.number)),
    (p_tenant_id, p_source_id, 'system', format('Merged into ticket #%s.', v_target.number));
end;
$$;

-- The SLA sweep, as before; it skips tickets someone else holds (and never waits for one).
create or replace function private.run_sla_sweep(p_now timestamptz default now(), p_limit int default 500)
returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_due record;
  v_ticket public.tickets;
  v_kind text;
  v_count int := 0;
begin
  for v_due in
    (select t.tenant_id, t.id, 'first_response'::text as kind from public.tickets t
     where t.first_response_at is null and t.sla_first_response_breached_at is null and t.deleted_at is null
       and t.first_response_due_at <= p_now and t.status not in ('resolved', 'closed')
     order by t.first_response_due_at limit p_limit)
    union all
    (select t.tenant_id, t.id, 'resolution'::text from public.tickets t
     where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
       and t.due_date <= p_now and t.status not in ('resolved', 'closed')
     order by t.due_date limit p_limit)
  loop
    v_kind := v_due.kind;
    -- Re-read under a row lock; a concurrent sweep that got there first wins.
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null;
    continue when (v_kind = 'first_response' and (v_ticket.sla_first_response_breached_at is not null or v_ticket.first_response_at is not null))
               or (v_kind = 'resolution' and (v_ticket.sla_resolution_breached_at is not null or v_ticket.resolved_at is not null));
    update public.tickets set
      sla_first_response_breached_at = case when v_kind = 'first_response' then p_now else sla_first_response_breached_at end,
      sla_resolution_breached_at = case when v_kind = 'resolution' then p_now else sla_resolution_breached_at end,
      status = case when status in ('open', 'pending') then 'escalated' else status end
    where tenant_id = v_ticket.tenant_id and id = v_ticket.id;
    insert into public.ticket_messages (tenant_id, ticket_id, type, content)
    values (v_ticket.tenant_id, v_ticket.id, 'system',
            case v_kind when 'first_response' then 'SLA breached: no first response by the due time.'
                        else 'SLA breached: not resolved by the due date.' end);
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', p_now));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;

-- ------------------------------------------------------------------ tenant guard

-- A tenant never loses its last admin, as before; the tenant row is the guard, locked
-- FOR NO KEY UPDATE so inserts referencing the tenant (KEY SHARE) do not queue behind it.
create or replace function private.keep_last_admin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if old.role <> 'admin' or (tg_op = 'UPDATE' and new.role = 'admin') then
    return coalesce(new, old);
  end if;
  -- The identity provider is authoritative: when it deletes a person or their
  -- membership (a verified webhook, as service_role), the rule yields.
  if coalesce(auth.jwt() ->> 'role', '') = 'service_role' then
    return coalesce(new, old);
  end if;
  select t.status into v_status from public.tenants t where t.id = old.tenant_id for no key update;
  if v_status is null or v_status = 'deleted' then
    return coalesce(new, old);
  end if;
  if not exists (
    select 1 from public.memberships m
    where m.tenant_id = old.tenant_id and m.role = 'admin' and m.id <> old.id
  ) then
    raise exception 'a tenant must keep at least one admin' using errcode = 'PT409';
  end if;
  return coalesce(new, old);
end;
$$;

-- ------------------------------------------------------------------ statistics

-- The cells a ticket row counts in: its (status, priority) and its two durations.
create function private.ticket_stats_cells(p_row public.tickets, p_sign int)
returns table (which int, k1 text, k2 text, bucket int, n int)
language sql stable security definer
set search_path = ''
as $$
  select c.which, c.k1, c.k2, c.bucket, p_sign
  from (values
    (1, p_row.status, p_row.priority, null::int, true),
    (2, 'first_response', null::text, private.duration_bucket(extract(epoch from p_row.first_response_at - p_row.created_at)),
        p_row.first_response_at is not null),
    (2, 'resolution', null::text, private.duration_bucket(extract(epoch from p_row.resolved_at - p_row.created_at)),
        p_row.resolved_at is not null)
  ) c(which, k1, k2, bucket, wanted)
  -- Nothing for deleted tickets, nor while a tenant's own deletion cascades.
  where c.wanted and p_row.tenant_id is not null and p_row.deleted_at is null
    and exists (select 1 from public.tenants t where t.id = p_row.tenant_id)
$$;

-- Applies f(new) − f(old): net deltas only, in key order (counts by status, priority;
-- then durations by kind, bucket), so two writers lock shared statistics rows in the
-- same order.
create function private.ticket_stats_change(p_old public.tickets, p_new public.tickets) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v record;
  v_tenant uuid := coalesce(p_new.tenant_id, p_old.tenant_id);
begin
  for v in
    select d.which, d.k1, d.k2, d.bucket, sum(d.n)::bigint as n
    from (select * from private.ticket_stats_cells(p_old, -1)
          union all select * from private.ticket_stats_cells(p_new, 1)) d
    group by d.which, d.k1, d.k2, d.bucket
    having sum(d.n) <> 0
    order by d.which, d.k1, d.k2, d.bucket
  loop
    if v.which = 1 then
      insert into private.ticket_counts as c (tenant_id, status, priority, n)
      values (v_tenant, v.k1, v.k2, v.n)
      on conflict (tenant_id, status, priority) do update set n = c.n + excluded.n;
    else
      insert into private.ticket_durations as d (tenant_id, kind, bucket, n)
      values (v_tenant, v.k1, v.bucket, v.n)
      on conflict (tenant_id, kind, bucket) do update set n = d.n + excluded.n;
    end if;
  end loop;
end;
$$;

create or replace function private.ticket_stats_apply(p_row public.tickets, p_sign int) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_sign < 0 then
    perform private.ticket_stats_change(p_row, null);
  else
    perform private.ticket_stats_change(null, p_row);
  end if;
end;
$$;

create or replace function private.ticket_stats_maintain() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE'
     and (old.status, old.priority, old.deleted_at, old.first_response_at, old.resolved_at)
         is not distinct from (new.status, new.priority, new.deleted_at, new.first_response_at, new.resolved_at) then
    return null;
  end if;
  perform private.ticket_stats_change(case when tg_op <> 'INSERT' then old end, case when tg_op <> 'DELETE' then new end);
  return null;
end;
$$;

revoke all on function private.ticket_stats_cells(public.tickets, int), private.ticket_stats_change(public.tickets, public.tickets)
  from public, anon, authenticated;

-- ------------------------------------------------------------------ outbox

-- As before, plus: emitters of one (tenant, ordering key) take turns from their first
-- event to commit, so a key's deliveries are numbered in commit order and a worker
-- never sees a later one while an earlier one is still uncommitted. Ticket writers
-- already hold the ticket; this also covers message edits, which do not.
create or replace function private.emit_webhook_event(p_tenant_id uuid, p_type text, p_ordering_key text, p_payload jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_event bigint;
begin
  if not exists (select 1 from public.webhook_endpoints e
                 where e.tenant_id = p_tenant_id and e.enabled
                   and (cardinality(e.event_types) = 0 or p_type = any (e.event_types))) then
    return; -- nobody listens: no outbox row
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('webhook-order:' || p_tenant_id || ':' || p_ordering_key, 0));
  insert into private.webhook_events (tenant_id, type, ordering_key, payload)
  values (p_tenant_id, p_type, p_ordering_key, p_payload)
  returning id into v_event;
  insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
  select p_tenant_id, e.id, v_event, p_ordering_key from public.webhook_endpoints e
  where e.tenant_id = p_tenant_id and e.enabled and (cardinality(e.event_types) = 0 or p_type = any (e.event_types))
  order by e.id;
end;
$$;

-- As before; locks the endpoint, then the delivery (parent first), both FOR NO KEY UPDATE.
create or replace function private.record_webhook_attempt(
  p_delivery_id bigint, p_worker text, p_status_code int, p_error text, p_duration_ms int,
  p_max_attempts int default 15, p_disable_after int default 30
) returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_d private.webhook_deliveries;
  v_ok boolean := p_status_code between 200 and 299;
  v_failures int;
begin
  select * into v_d from private.webhook_deliveries where id = p_delivery_id;
  if v_d.id is null then
    return 'lost';
  end if;
  perform 1 from public.webhook_endpoints e where e.tenant_id = v_d.tenant_id and e.id = v_d.endpoint_id for no key update;
  select * into v_d from private.webhook_deliveries
  where id = p_delivery_id and locked_by = p_worker and status = 'delivering' for no key update;
  if v_d.id is null then
    return 'lost';
  end if;
  insert into private.webhook_attempts (delivery_id, status_code, error, duration_ms)
  values (p_delivery_id, p_status_code, left(p_error, 1000), p_duration_ms);
  if v_ok then
    update private.webhook_deliveries set status = 'delivered', delivered_at = now(), last_status_code = p_status_code,
      last_error = null, locked_by = null, locked_until = null where id = p_delivery_id;
    update public.webhook_endpoints set consecutive_failures = 0
    where tenant_id = v_d.tenant_id and id = v_d.endpoint_id and consecutive_failures <> 0;
    return 'delivered';
  end if;
  update public.webhook_endpoints set consecutive_failures = consecutive_failures + 1
  where tenant_id = v_d.tenant_id and id = v_d.endpoint_id
  returning consecutive_failures into v_failures;
  if v_failures >= p_disable_after then
    update public.webhook_endpoints set enabled = false,
      disabled_reason = format('disabled after %s failed deliveries in a row; last: %s', v_failures,
                               coalesce(p_status_code::text, left(p_error, 200)))
    where tenant_id = v_d.tenant_id and id = v_d.endpoint_id;
  end if;
  if v_d.attempts >= p_max_attempts then
    update private.webhook_deliveries set status = 'failed', last_status_code = p_status_code, last_error = left(p_error, 1000),
      locked_by = null, locked_until = null where id = p_delivery_id;
    return 'failed';
  end if;
  update private.webhook_deliveries set status = 'pending', last_status_code = p_status_code, last_error = left(p_error, 1000),
    locked_by = null, locked_until = null,
    next_attempt_at = now() + make_interval(secs => least(power(2, v_d.attempts) * 5, 3600) * (0.75 + random() * 0.5))
  where id = p_delivery_id;
  return 'retry';
end;
$$;
