-- An endpoint pointed at a new URL keeps no failure record of the old one (review of
-- outbound webhooks). Its consecutive failures and failing_since were the old receiver's:
-- an endpoint that had failed for 23 hours, its URL fixed by an admin, was disabled at the
-- new receiver's first failure, "41 failed deliveries since" the day before, and waited
-- out the old receiver's breaker meanwhile. A URL change now starts the record afresh, as
-- enabling an endpoint again does (the hold the old receiver asked for goes already,
-- 20261207131000).

-- Redefined (20261205192000_webhook_endpoint_failing_since.sql): a new URL too.
create or replace function private.webhook_endpoint_reenabled() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if (new.enabled and not old.enabled) or new.url is distinct from old.url then
    new.consecutive_failures := 0;
    new.failing_since := null;
    if new.enabled then
      new.disabled_reason := null;
    end if;
  end if;
  return new;
end;
$$;
