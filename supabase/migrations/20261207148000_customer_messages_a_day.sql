-- A customer writes at most so many messages a day (review, issue 14).
--
-- A customer (role user) may insert messages straight through PostgREST on a ticket they
-- see (the ticket_messages insert policy), where the functions' per-minute rate limits
-- never run: one POST /rest/v1/ticket_messages with an array of 100,000 rows locked and
-- updated the ticket once per row, wrote a notification per follower, queued a webhook
-- delivery per endpoint and an automation job per rule, and an audit entry each — the
-- abuse the tickets' daily cap closed for filings (20261206031000) and the pending-uploads
-- cap for files (20261206036000). Now the messages a customer writes themselves are
-- counted per UTC day on both paths, and past the tenant's
-- `settings.customer_messages_per_day` (1,000 unless set; 1 to 1,000,000) the insert is
-- refused with PT429 `rate_limited` ({scope, limit, retry_after}), the whole statement
-- with it. Messages staff, API keys or the machine's paths write are not counted.

-- One row per customer who wrote: the day of their count and the count, reset on the
-- first message of a new day; gone with the membership.
create table private.customer_message_posts (
  tenant_id uuid not null,
  user_id uuid not null,
  day date not null,
  posted integer not null check (posted > 0),
  primary key (tenant_id, user_id),
  foreign key (tenant_id, user_id) references public.memberships (tenant_id, user_id) on delete cascade
);
alter table private.customer_message_posts enable row level security;
revoke all on private.customer_message_posts from public, anon, authenticated, service_role;

-- The tenant's daily allowance per customer: the settings' number within bounds, else
-- 1,000 (a value written past the API's check never refuses a message).
create function private.customer_messages_per_day(p_tenant_id uuid) returns integer
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select case when pg_catalog.jsonb_typeof(t.settings -> 'customer_messages_per_day') = 'number'
                then least(greatest(pg_catalog.floor((t.settings ->> 'customer_messages_per_day')::numeric), 1), 1000000)::integer
           end
    from public.tenants t where t.id = p_tenant_id), 1000)
$$;
revoke all on function private.customer_messages_per_day(uuid) from public, anon, authenticated, service_role;

-- Counts one message by the caller in the tenant and refuses it past the day's allowance;
-- the count's row lock lasts until commit (one customer's messages are counted one
-- transaction at a time, a bulk insert row by row). Only the caller's own count, in a
-- tenant they belong to: called directly, it does no more than their next insert would.
create function private.check_customer_message(p_tenant_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_today date := (pg_catalog.now() at time zone 'UTC')::date;
  v_cap integer;
  v_posted integer;
begin
  if v_me is null or not p_tenant_id = any (private.tenant_ids('user')) then
    return;
  end if;
  insert into private.customer_message_posts as p (tenant_id, user_id, day, posted)
  values (p_tenant_id, v_me, v_today, 1)
  on conflict (tenant_id, user_id) do update
    set posted = case when p.day = excluded.day then p.posted + 1 else 1 end, day = excluded.day
  returning p.posted into v_posted;
  v_cap := private.customer_messages_per_day(p_tenant_id);
  if v_posted > v_cap then
    raise exception 'Too many messages from you in this tenant today' using errcode = 'PT429',
      detail = pg_catalog.jsonb_build_object('code', 'rate_limited', 'details', pg_catalog.jsonb_build_object(
        'scope', 'customer_messages_per_day', 'limit', v_cap,
        'retry_after', greatest(1, pg_catalog.ceil(extract(epoch from
          ((v_today + 1)::timestamp at time zone 'UTC') - pg_catalog.clock_timestamp())))::integer));
  end if;
end;
$$;
revoke all on function private.check_customer_message(uuid) from public, anon, service_role;
grant execute on function private.check_customer_message(uuid) to authenticated;

-- As the invoker: `current_user` tells an API request (PostgREST's, or the functions'
-- callerDb, both as authenticated) from a trusted path, and only a customer's own
-- message is counted. A non-member is the insert policy's to refuse.
create function private.ticket_messages_customer_cap() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated' and private.role_in(new.tenant_id) = 'user' then
    perform private.check_customer_message(new.tenant_id);
  end if;
  return new;
end;
$$;
revoke all on function private.ticket_messages_customer_cap() from public, anon;
create trigger ticket_messages_before_insert_customer_cap before insert on public.ticket_messages
  for each row execute function private.ticket_messages_customer_cap();
