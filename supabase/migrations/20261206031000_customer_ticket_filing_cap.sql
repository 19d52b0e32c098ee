-- A customer files at most so many tickets a day: the tenant's monthly quota is not one
-- customer's to spend.
--
-- Every ticket counts against the plan's tickets_per_month (20261202071000_usage_quotas),
-- and a customer (role user) may insert tickets straight through PostgREST, where the
-- functions' per-minute rate limits never run: one POST /rest/v1/tickets with an array of
-- 10,000 rows spent a starter tenant's month, after which every ticket of the tenant —
-- staff's, Chatwoot's, those opened from calls — was 403 plan_limit_reached until the
-- month turned (soft-deleting the spam gives nothing back). Now the tickets a customer
-- files themselves are counted per UTC day, on both paths, and past the tenant's
-- `settings.customer_tickets_per_day` (50 unless set; 1 to 1,000,000) the insert is refused
-- with PT429 `rate_limited` ({scope, limit, retry_after: seconds to the next UTC day}),
-- the whole statement with it. Tickets staff, platform admins, API keys or the machine's
-- paths file (for the customer too) are not counted.

-- One row per customer who filed: the day of their count and the count, reset on the
-- first filing of a new day (as private.rate_limit_counters resets per minute), so the
-- table never grows past the tenants' customers; gone with the membership.
create table private.customer_ticket_filings (
  tenant_id uuid not null,
  user_id uuid not null,
  day date not null,
  filed integer not null check (filed > 0),
  primary key (tenant_id, user_id),
  foreign key (tenant_id, user_id) references public.memberships (tenant_id, user_id) on delete cascade
);
revoke all on private.customer_ticket_filings from public, anon, authenticated;

-- The tenant's daily allowance per customer: a number the settings hold, within bounds,
-- else 50 (a value written past the API's check is never a reason to refuse a ticket).
create function private.customer_tickets_per_day(p_tenant_id uuid) returns integer
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select case when pg_catalog.jsonb_typeof(t.settings -> 'customer_tickets_per_day') = 'number'
                then least(greatest(pg_catalog.floor((t.settings ->> 'customer_tickets_per_day')::numeric), 1), 1000000)::integer
           end
    from public.tenants t where t.id = p_tenant_id), 50)
$$;
revoke all on function private.customer_tickets_per_day(uuid) from public, anon, authenticated, service_role;

-- Counts one filing by the caller in the tenant and refuses it past the day's allowance.
-- The count's row lock lasts until commit, so one customer's filings are counted one
-- transaction at a time: two at once cannot both take the last place, and a bulk insert
-- counts row by row. Only the caller's own count, in a tenant they belong to: called
-- directly, it does no more than their next insert would.
create function private.check_customer_filing(p_tenant_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_today date := (pg_catalog.now() at time zone 'UTC')::date;
  v_cap integer;
  v_filed integer;
begin
  if v_me is null or not p_tenant_id = any (private.tenant_ids('user')) then
    return;
  end if;
  insert into private.customer_ticket_filings as f (tenant_id, user_id, day, filed)
  values (p_tenant_id, v_me, v_today, 1)
  on conflict (tenant_id, user_id) do update
    set filed = case when f.day = excluded.day then f.filed + 1 else 1 end, day = excluded.day
  returning f.filed into v_filed;
  v_cap := private.customer_tickets_per_day(p_tenant_id);
  if v_filed > v_cap then
    raise exception 'Too many tickets from you in this tenant today' using errcode = 'PT429',
      detail = pg_catalog.jsonb_build_object('code', 'rate_limited', 'details', pg_catalog.jsonb_build_object(
        'scope', 'customer_tickets_per_day', 'limit', v_cap,
        'retry_after', greatest(1, pg_catalog.ceil(extract(epoch from
          ((v_today + 1)::timestamp at time zone 'UTC') - pg_catalog.clock_timestamp())))::integer));
  end if;
end;
$$;
revoke all on function private.check_customer_filing(uuid) from public, anon, service_role;
grant execute on function private.check_customer_filing(uuid) to authenticated;

-- As the invoker, like tickets_before_insert (which it follows in name order: the caller
-- is known to be a member by then): `current_user` tells an API request from a trusted
-- path, and only a customer's own filing is counted.
create function private.tickets_customer_filing_cap() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated' and private.role_in(new.tenant_id) = 'user' then
    perform private.check_customer_filing(new.tenant_id);
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_customer_filing_cap() from public, anon;
create trigger tickets_before_insert_customer_cap before insert on public.tickets
  for each row execute function private.tickets_customer_filing_cap();
