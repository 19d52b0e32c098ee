-- Per-tenant ticket statistics that stay fast at a million tickets: counts by status
-- and priority, and log-scale histograms of first-response and resolution times
-- (5 % wide buckets), all maintained by one trigger. A ticket contributes f(row) — its
-- status/priority cell and its two durations, nothing once soft-deleted — and every
-- change subtracts f(old) and adds f(new). Inserts in a tenant already queue on its
-- ticket counter, so the counter rows add no new contention for creates.

create table private.ticket_counts (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  status text not null,
  priority text not null,
  n bigint not null default 0,
  primary key (tenant_id, status, priority)
);

create table private.ticket_durations (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  kind text not null check (kind in ('first_response', 'resolution')),
  bucket int not null,
  n bigint not null default 0,
  primary key (tenant_id, kind, bucket)
);

-- ------------------------------------------------------------------ maintained by trigger

-- A duration's histogram bucket: 5 % wide on a log scale (a second or less is bucket 0).
create function private.duration_bucket(p_seconds double precision) returns int
language sql immutable parallel safe
set search_path = ''
as $$ select floor(ln(greatest(p_seconds, 1)) / ln(1.05))::int $$;
revoke all on function private.duration_bucket(double precision) from public, anon;

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
revoke all on function private.ticket_stats_cells(public.tickets, int) from public, anon, authenticated;

-- Applies f(new) − f(old): net deltas only, in key order (counts by status, priority;
-- then durations by kind, bucket), so two writers lock shared statistics rows in the
-- same order (lock level 7).
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
revoke all on function private.ticket_stats_change(public.tickets, public.tickets) from public, anon, authenticated;

create function private.ticket_stats_maintain() returns trigger
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
revoke all on function private.ticket_stats_maintain() from public, anon;
create trigger ticket_stats_maintain after insert or update or delete on public.tickets
  for each row execute function private.ticket_stats_maintain();

-- ------------------------------------------------------------------ reading them

-- The median of a histogram: the bucket where the cumulative count crosses half,
-- reported at its geometric middle (so within about 2.5 % of the true value).
create function private.histogram_median(p_tenant_id uuid, p_kind text) returns double precision
language sql stable security definer
set search_path = ''
as $$
  with h as (
    select bucket, n, sum(n) over (order by bucket) as cum, sum(n) over () as total
    from private.ticket_durations where tenant_id = p_tenant_id and kind = p_kind and n > 0
  )
  select round(exp((bucket + 0.5) * ln(1.05))::numeric, 1)::double precision
  from h where cum * 2 >= total order by bucket limit 1
$$;
revoke all on function private.histogram_median(uuid, text) from public, anon;

-- Statistics for staff of the tenant.
create function private.ticket_stats(p_tenant_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user' then
    raise exception 'ticket statistics are for staff' using errcode = 'PT403';
  end if;
  return jsonb_build_object(
    'total', (select coalesce(sum(n), 0) from private.ticket_counts where tenant_id = p_tenant_id),
    'by_status', (select coalesce(jsonb_object_agg(status, n), '{}') from (
       select status, sum(n)::bigint as n from private.ticket_counts where tenant_id = p_tenant_id group by status having sum(n) > 0) s),
    'by_priority', (select coalesce(jsonb_object_agg(priority, n), '{}') from (
       select priority, sum(n)::bigint as n from private.ticket_counts where tenant_id = p_tenant_id group by priority having sum(n) > 0) p),
    'median_first_response_seconds', private.histogram_median(p_tenant_id, 'first_response'),
    'median_resolution_seconds', private.histogram_median(p_tenant_id, 'resolution')
  );
end;
$$;
revoke all on function private.ticket_stats(uuid) from public, anon;
grant execute on function private.ticket_stats(uuid) to authenticated, service_role;

-- ------------------------------------------------------------------ rebuilding them

-- Recomputes a tenant's statistics from its tickets: for bulk loads done with triggers
-- off, and as the reference the trigger-maintained numbers are tested against.
create function private.rebuild_ticket_stats(p_tenant_id uuid) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  delete from private.ticket_counts where tenant_id = p_tenant_id;
  delete from private.ticket_durations where tenant_id = p_tenant_id;
  insert into private.ticket_counts (tenant_id, status, priority, n)
  select tenant_id, status, priority, count(*) from public.tickets
  where tenant_id = p_tenant_id and deleted_at is null group by 1, 2, 3;
  insert into private.ticket_durations (tenant_id, kind, bucket, n)
  select p_tenant_id, kind, bucket, count(*) from (
    select 'first_response' as kind, private.duration_bucket(extract(epoch from first_response_at - created_at)) as bucket
    from public.tickets where tenant_id = p_tenant_id and deleted_at is null and first_response_at is not null
    union all
    select 'resolution', private.duration_bucket(extract(epoch from resolved_at - created_at))
    from public.tickets where tenant_id = p_tenant_id and deleted_at is null and resolved_at is not null
  ) d group by 1, 2, 3;
end;
$$;
revoke all on function private.rebuild_ticket_stats(uuid) from public, anon, authenticated;
grant execute on function private.rebuild_ticket_stats(uuid) to service_role;
