-- House rules every later migration follows: a private schema for what API roles must
-- not reach directly, privileges that start closed, updated_at kept by the database, and
-- one lock order for every writer.
--
-- Migrations are history. Each file holds one concern, in dependency order, and defines
-- each of its functions once, in its final form. A migration that has landed is never
-- edited again: a change is a new file after the last one, then `npm run gen:types`
-- (tests/schema/migrations-history.test.ts holds the checksums of the landed files).

-- ------------------------------------------------------------------ the private schema

-- Helpers, queues and bookkeeping live in `private`, which PostgREST does not expose. API
-- roles may look into it only to call what a migration grants them (the RLS helpers, a
-- few checked operations).
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- ------------------------------------------------------------------ privileges start closed

-- Postgres makes every new function executable by PUBLIC. Functions the migration role
-- creates are executable only by whom a migration grants it to; each file revokes and
-- grants next to the function, so the intent is written where the function is.
alter default privileges revoke execute on functions from public;

-- Privileges narrow what RLS lets through. anon gets nothing. authenticated never gets
-- TRUNCATE (it skips RLS and row triggers), TRIGGER or REFERENCES, inserts and updates
-- only the columns a person may set (ids, timestamps and audit columns are the
-- database's), and nothing at all on sequences.
alter default privileges in schema public revoke truncate, trigger, references on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on tables from anon;

-- ------------------------------------------------------------------ updated_at

-- updated_at is maintained by the database, not by callers.
create function private.set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
revoke all on function private.set_updated_at() from public, anon;

-- ------------------------------------------------------------------ the lock order

-- One lock order for every writer, so concurrent writers on one row queue instead of
-- deadlocking (issue 9, part 2). Every function below that locks says which level it takes.
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
--   9. the job queue (20261126100350_jobs.sql): the advisory lock of a job key, then
--      that of a named queue, then job rows — always after every domain row
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
-- Where it is applied (issue 9 brought the schema under the rule):
-- * ticket_messages / attachments: BEFORE INSERT locks the ticket (lock_parent_ticket;
--   locking it FOR UPDATE in the message AFTER trigger, after the foreign key's KEY
--   SHARE, deadlocked 146 of 200 concurrent replies).
-- * auto_assignee, keep_last_admin, merge_tickets, run_sla_sweep, record_webhook_attempt,
--   the job queue's claims and leases: FOR NO KEY UPDATE.
-- * merge_tickets locks the source's messages and attachments (by id) after the tickets.
-- * unassign_on_demotion locks the demoted person's tickets by id before changing them.
-- * statistics: deltas are netted and applied in key order (status changes in opposite
--   directions on two tickets would otherwise lock two counter rows in opposite orders).
-- * emit_webhook_event serialises emitters of one ordering key (message edits do not
--   lock the ticket), so deliveries of one key are numbered in commit order.
-- * record_webhook_attempt: endpoint before delivery, then the job.
-- * the job queue: a claim locks only job rows (SKIP LOCKED) and commits before the task
--   runs; whatever changes a domain row and a job locks the domain row first — enqueue
--   triggers (the changed row, then add_job), recording progress or an attempt
--   (the tenant_services / delivery / reply row, then job_lease_held), a failure (the
--   task's failed hook, then fail_job, in one transaction).
