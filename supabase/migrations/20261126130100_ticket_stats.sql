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

create function private.duration_bucket(p_seconds double precision) returns int
language sql immutable parallel safe
set search_path = ''
as $$ select floor(ln(greatest(p_seconds, 1)) / ln(1.05))::int $$;

create function private.ticket_stats_apply(p_row public.tickets, p_sign int) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  -- Nothing to count for deleted tickets, nor while a tenant's own deletion cascades.
  if p_row.tenant_id is null or p_row.deleted_at is not null
     or not exists (select 1 from public.tenants t where t.id = p_row.tenant_id) then
    return;
  end if;
  insert into private.ticket_counts as c (tenant_id, status, priority, n)
  values (p_row.tenant_id, p_row.status, p_row.priority, p_sign)
  on conflict (tenant_id, status, priority) do update set n = c.n + p_sign;
  if p_row.first_response_at is not null then
    insert into private.ticket_durations as d (tenant_id, kind, bucket, n)
    values (p_row.tenant_id, 'first_response',
            private.duration_bucket(extract(epoch from p_row.first_response_at - p_row.created_at)), p_sign)
    on conflict (tenant_id, kind, bucket) do update set n = d.n + p_sign;
  end if;
  if p_row.resolved_at is not null then
    insert into private.ticket_durations as d (tenant_id, kind, bucket, n)
    values (p_row.tenant_id, 'resolution',
            private.duration_bucket(extract(epoch from p_row.resolved_at - p_row.created_at)), p_sign)
    on conflict (tenant_id, kind, bucket) do update set n = d.n + p_sign;
  end if;
end;
$$;

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
  if tg_op in ('UPDATE', 'DELETE') then
    perform private.ticket_stats_apply(old, -1);
  end if;
  if tg_op in ('UPDATE', 'INSERT') then
    perform private.ticket_stats_apply(new, 1);
  end if;
  return null;
end;
$$;
create trigger ticket_stats_maintain after insert or update or delete on public.tickets
  for each row execute function private.ticket_stats_maintain();

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

revoke all on function private.duration_bucket(double precision), private.ticket_stats_apply(public.tickets, int),
  private.ticket_stats_maintain(), private.histogram_median(uuid, text), private.ticket_stats(uuid) from public, anon;
grant execute on function private.ticket_stats(uuid) to authenticated, service_role;

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
