-- Idempotency keys are kept for their 24 hours, and keep only what a retry reads
-- (review, issue 14).
--
-- A key expired only when the same caller sent the same key again: clients that send a
-- new key per request (as they should) left one row per ticket forever. Each row also held
-- the whole ticket as first answered (its description, metadata and, for staff, hidden
-- custom field values), a second copy that edits, deletes and erasures never reached;
-- a retry reads only its id (functions/tickets/routes/tickets.ts answers with the ticket
-- as it is now). Now the daily `prune` job drops keys older than 24 hours
-- (private.prune_idempotency_keys), and a response keeps the ticket's id alone, old
-- rows included.

-- Past their 24 hours first (no retry can use them): what is left to rewrite is a day's.
delete from private.idempotency_keys k where k.created_at < now() - interval '24 hours';
update private.idempotency_keys k set response = jsonb_build_object('id', k.response -> 'id')
where k.response is not null and k.response - 'id' <> '{}'::jsonb;

create index idempotency_keys_created_at_idx on private.idempotency_keys (created_at);

create function private.prune_idempotency_keys(p_keep interval default interval '24 hours') returns int
language sql volatile security definer
set search_path = ''
as $$
  with dropped as (
    delete from private.idempotency_keys k where k.created_at < now() - p_keep returning 1
  )
  select count(*)::int from dropped;
$$;
revoke all on function private.prune_idempotency_keys(interval) from public, anon, authenticated;
grant execute on function private.prune_idempotency_keys(interval) to service_role;
