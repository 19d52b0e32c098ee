-- A customer's message edits are counted once per statement, on a counter of their own
-- (review of 20261207149000, issue 14).
--
-- 20261207149000 counted each edited row in a BEFORE UPDATE row trigger, on the counter
-- a customer's new messages take before their ticket (level 5 of the lock order): an
-- edit then held its message row (level 6) and waited for that counter, the wrong way
-- round. Two edits of one customer (a bulk one and a single one) could deadlock, and so
-- could an edit, a reply of the same customer waiting for its ticket, and an agent
-- merging that ticket (which waits for the edited message). Edits are now counted after
-- the statement, in one upsert per tenant (its rows already locked), on their own
-- counter that nothing holding a ticket or a message ever waits for: a lock after every
-- domain row, as the statistics' (level 7). Same allowance, counted apart:
-- `settings.customer_messages_per_day` edits a UTC day, past it PT429 `rate_limited`
-- with scope `customer_message_edits_per_day`, the whole statement refused.

drop trigger ticket_messages_before_update_customer_cap on public.ticket_messages;
drop function private.ticket_messages_customer_edit_cap();

create table private.customer_message_edits (
  tenant_id uuid not null,
  user_id uuid not null,
  day date not null,
  edited integer not null check (edited > 0),
  primary key (tenant_id, user_id),
  foreign key (tenant_id, user_id) references public.memberships (tenant_id, user_id) on delete cascade
);
alter table private.customer_message_edits enable row level security;
revoke all on private.customer_message_edits from public, anon, authenticated, service_role;

-- Counts `p_edits` edits by the caller in the tenant and refuses past the day's
-- allowance. Only the caller's own count, in a tenant they belong to: called directly,
-- it does no more than their next edits would.
create function private.check_customer_edits(p_tenant_id uuid, p_edits integer) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_today date := (pg_catalog.now() at time zone 'UTC')::date;
  v_cap integer;
  v_edited integer;
begin
  if v_me is null or p_edits is null or p_edits < 1 or not p_tenant_id = any (private.tenant_ids('user')) then
    return;
  end if;
  insert into private.customer_message_edits as e (tenant_id, user_id, day, edited)
  values (p_tenant_id, v_me, v_today, p_edits)
  on conflict (tenant_id, user_id) do update
    set edited = case when e.day = excluded.day then e.edited + excluded.edited else excluded.edited end, day = excluded.day
  returning e.edited into v_edited;
  v_cap := private.customer_messages_per_day(p_tenant_id);
  if v_edited > v_cap then
    raise exception 'Too many message edits from you in this tenant today' using errcode = 'PT429',
      detail = pg_catalog.jsonb_build_object('code', 'rate_limited', 'details', pg_catalog.jsonb_build_object(
        'scope', 'customer_message_edits_per_day', 'limit', v_cap,
        'retry_after', greatest(1, pg_catalog.ceil(extract(epoch from
          ((v_today + 1)::timestamp at time zone 'UTC') - pg_catalog.clock_timestamp())))::integer));
  end if;
end;
$$;
revoke all on function private.check_customer_edits(uuid, integer) from public, anon, service_role;
grant execute on function private.check_customer_edits(uuid, integer) to authenticated;

-- As the invoker, after the statement: `current_user` tells an API request from a
-- trusted path (merges, a person's deletion, the machine's paths are not counted); only
-- rows whose content changed count, per tenant, for a customer of it.
create function private.ticket_messages_customer_edits() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v record;
begin
  if current_user <> 'authenticated' then
    return null;
  end if;
  for v in
    select n.tenant_id, count(*)::integer as edits
    from new_rows n join old_rows o on o.tenant_id = n.tenant_id and o.id = n.id
    where n.content is distinct from o.content
    group by n.tenant_id
  loop
    if private.role_in(v.tenant_id) = 'user' then
      perform private.check_customer_edits(v.tenant_id, v.edits);
    end if;
  end loop;
  return null;
end;
$$;
revoke all on function private.ticket_messages_customer_edits() from public, anon;
create trigger ticket_messages_customer_edits after update on public.ticket_messages
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.ticket_messages_customer_edits();
