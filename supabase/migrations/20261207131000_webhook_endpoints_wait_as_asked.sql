-- An endpoint that asks for time gets it for all its deliveries (review of the job queue
-- and outbound webhooks, issue 14).
--
-- A receiver's Retry-After (429, or 503 with the header) held back only the delivery
-- that got it: the endpoint's deliveries for other tickets, and new ones, still went out
-- as they came due, so a receiver answering "429, Retry-After: 60" got one request per
-- ticket, each spending an attempt. And once the breaker had tripped, a 503 asking for an
-- hour was probed again after the breaker's own interval (10 s, doubling).
--
-- Now such an answer holds the whole endpoint (private.webhook_endpoint_hold: until the
-- time asked, a day at most; 10 s for a 429 that names none): while it holds, the
-- endpoint's deliveries are deferred without spending an attempt, each at the head of its
-- queue (private.webhook_endpoint_gate, which the deliveries ask before sending), and the
-- breaker's probes wait for it too. The delivery that got the answer retries when it
-- ends. A 429 is still no failure of the endpoint. An admin who enables the endpoint again
-- or points it elsewhere ends the hold (it was the old receiver's word).

create table private.webhook_endpoint_holds (
  tenant_id uuid not null,
  endpoint_id uuid not null,
  until timestamptz not null,
  primary key (tenant_id, endpoint_id),
  foreign key (tenant_id, endpoint_id) references public.webhook_endpoints (tenant_id, id) on delete cascade
);
alter table private.webhook_endpoint_holds enable row level security;
revoke all on private.webhook_endpoint_holds from public, anon, authenticated, service_role;

create function private.webhook_endpoint_hold(p_tenant_id uuid, p_endpoint_id uuid, p_seconds numeric) returns void
language sql volatile security definer
set search_path = ''
as $$
  insert into private.webhook_endpoint_holds as h (tenant_id, endpoint_id, until)
  select p_tenant_id, p_endpoint_id, now() + make_interval(secs => least(greatest(coalesce(p_seconds, 1), 1), 86400))
  where exists (select 1 from public.webhook_endpoints e where e.tenant_id = p_tenant_id and e.id = p_endpoint_id)
  on conflict (tenant_id, endpoint_id) do update set until = greatest(h.until, excluded.until);
$$;
revoke all on function private.webhook_endpoint_hold(uuid, uuid, numeric) from public, anon, authenticated;
grant execute on function private.webhook_endpoint_hold(uuid, uuid, numeric) to service_role;

-- Redefined (20261206130000_webhook_endpoint_breaker.sql): an endpoint held by its
-- receiver's Retry-After is waited for first.
create or replace function private.webhook_endpoint_gate(p_tenant_id uuid, p_endpoint_id uuid, p_trip_after int default 5)
returns numeric
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_failures int;
  v_until timestamptz;
begin
  select h.until into v_until
  from private.webhook_endpoint_holds h
  where h.tenant_id = p_tenant_id and h.endpoint_id = p_endpoint_id and h.until > now();
  if v_until is not null then
    return greatest(1, ceil(extract(epoch from v_until - now())));
  end if;
  select e.consecutive_failures into v_failures
  from public.webhook_endpoints e where e.tenant_id = p_tenant_id and e.id = p_endpoint_id;
  if v_failures is null or v_failures < p_trip_after then
    return null;
  end if;
  -- Tripped: read again under a share lock. A success being recorded zeroes the failures
  -- and drops the breaker under its own lock on the row (private.record_webhook_attempt,
  -- webhook_endpoint_breaker_reset): waiting for it, this sees the endpoint healthy
  -- rather than writing a breaker behind the reset's back, which would hold up the
  -- probes of a later run of failures.
  select e.consecutive_failures into v_failures
  from public.webhook_endpoints e where e.tenant_id = p_tenant_id and e.id = p_endpoint_id
  for share;
  if v_failures is null or v_failures < p_trip_after then
    return null;
  end if;
  insert into private.webhook_endpoint_breakers as b (tenant_id, endpoint_id, probe_after)
  values (p_tenant_id, p_endpoint_id,
          now() + make_interval(secs => least(300, 10 * power(2, least(v_failures - p_trip_after, 5)))))
  on conflict (tenant_id, endpoint_id) do update set probe_after = excluded.probe_after
    where b.probe_after <= now();
  if found then
    return null; -- this delivery is the probe
  end if;
  select b.probe_after into v_until
  from private.webhook_endpoint_breakers b where b.tenant_id = p_tenant_id and b.endpoint_id = p_endpoint_id;
  return greatest(1, ceil(extract(epoch from v_until - now())));
end;
$$;

-- Enabled again, or pointed at another URL: the receiver's hold ends with it.
create function private.webhook_endpoint_hold_reset() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from private.webhook_endpoint_holds h where h.tenant_id = new.tenant_id and h.endpoint_id = new.id;
  return null;
end;
$$;
revoke all on function private.webhook_endpoint_hold_reset() from public, anon, authenticated;
create trigger webhook_endpoint_hold_reset
after update of enabled, url on public.webhook_endpoints
for each row when ((new.enabled and not old.enabled) or new.url is distinct from old.url)
execute function private.webhook_endpoint_hold_reset();
