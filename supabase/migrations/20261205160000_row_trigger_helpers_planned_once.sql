-- Per-row trigger helpers planned once (issue 14: the bulk ticket writes' per-row cost,
-- measured while bounding their locks).
--
-- A SQL function with its own search_path (the rule here for every function) is never
-- inlined, and its body is parsed and planned again on every call: PL/pgSQL keeps the
-- plans of its own statements for the session, a SQL function's last only for the
-- statement calling it. The triggers on tickets call such functions once or more per row.
-- Measured with EXPLAIN ANALYZE and track_functions on an admin's insert of 1,000 tickets
-- into a tenant with a webhook endpoint (in one statement, as PostgREST writes a bulk
-- insert), per row:
-- * the ticket_stats_maintain trigger: 0.65-0.74 ms (at 250, 1,000 and 4,000 tickets),
--   the largest on the table; private.ticket_stats_change read a ticket's cells through
--   private.ticket_stats_cells, twice. The cells are now computed in ticket_stats_change's
--   own statement (same cells, same deltas, same key order: lock level 7), a duration's
--   bucket only for a ticket that has one; ticket_stats_cells is dropped.
-- * private.notify_followers: 218 us (once per ticket event, with no follower to notify);
-- * private.is_member: 53 us (a ticket's creator and assignee checks);
-- * private.api_timestamp: 16 us, three times (a ticket's timestamps in its webhook payload);
-- * private.webhook_tenant_lock_key: 28 us (every webhook event), and
--   private.job_adders_lock_key, the same shape (every job with a key or queue).
-- Each is now PL/pgSQL with the same body. The whole insert was about 2.3 ms a ticket.

-- Redefined (20261126101400_ticket_statistics.sql): the cells inline, as above.
create or replace function private.ticket_stats_change(p_old public.tickets, p_new public.tickets) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v record;
  v_tenant uuid := coalesce(p_new.tenant_id, p_old.tenant_id);
  -- A row counts unless it is absent (an insert's old, a delete's new) or soft-deleted.
  v_old boolean := p_old.tenant_id is not null and p_old.deleted_at is null;
  v_new boolean := p_new.tenant_id is not null and p_new.deleted_at is null;
begin
  -- Nothing while a tenant's own deletion cascades.
  if not (v_old or v_new) or not exists (select 1 from public.tenants t where t.id = v_tenant) then
    return;
  end if;
  for v in
    select d.which, d.k1, d.k2, d.bucket, sum(d.n)::bigint as n
    from (values
      (1, p_old.status, p_old.priority, null::int, -1, v_old),
      (1, p_new.status, p_new.priority, null::int, 1, v_new),
      (2, 'first_response', null::text,
          case when v_old and p_old.first_response_at is not null
               then private.duration_bucket(extract(epoch from p_old.first_response_at - p_old.created_at)) end,
          -1, v_old and p_old.first_response_at is not null),
      (2, 'first_response', null::text,
          case when v_new and p_new.first_response_at is not null
               then private.duration_bucket(extract(epoch from p_new.first_response_at - p_new.created_at)) end,
          1, v_new and p_new.first_response_at is not null),
      (2, 'resolution', null::text,
          case when v_old and p_old.resolved_at is not null
               then private.duration_bucket(extract(epoch from p_old.resolved_at - p_old.created_at)) end,
          -1, v_old and p_old.resolved_at is not null),
      (2, 'resolution', null::text,
          case when v_new and p_new.resolved_at is not null
               then private.duration_bucket(extract(epoch from p_new.resolved_at - p_new.created_at)) end,
          1, v_new and p_new.resolved_at is not null)
    ) d(which, k1, k2, bucket, n, wanted)
    where d.wanted
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

drop function private.ticket_stats_cells(public.tickets, int);

-- Redefined (20261202141100_customer_followers.sql): PL/pgSQL, the same statement.
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
             and exists (select 1 from public.tenants t where t.id = p_tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb)));
end;
$$;

-- Redefined (20261126100200_access_helpers.sql): PL/pgSQL, the same question.
create or replace function private.is_member(p_tenant_id uuid, p_user_id uuid) returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return exists (select 1 from public.memberships m where m.tenant_id = p_tenant_id and m.user_id = p_user_id);
end;
$$;

-- Redefined (20261201093000_api_timestamps.sql): PL/pgSQL, the same rendering.
create or replace function private.api_timestamp(p_at timestamptz) returns text
language plpgsql stable
set search_path = ''
as $$
begin
  return pg_catalog.to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
end;
$$;

-- Redefined (20261205120000_webhook_events_asked_once.sql): PL/pgSQL, the same key.
create or replace function private.webhook_tenant_lock_key(p_tenant_id uuid) returns bigint
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
  return pg_catalog.hashtextextended('webhook-tenant:' || p_tenant_id, 0);
end;
$$;

-- Redefined (20261205110000_job_adders_bounded_locks.sql): PL/pgSQL, the same key.
create or replace function private.job_adders_lock_key(p_tenant_id uuid) returns bigint
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
  return pg_catalog.hashtextextended('job-adders:' || coalesce(p_tenant_id::text, 'none'), 0);
end;
$$;
