-- A ticket's messages are listed by (created_at, id), and created_at defaulted to now(),
-- the time its transaction began: messages written in one transaction — a macro's two
-- replies and a note, a bulk insert through PostgREST — shared it, and their random ids
-- put them in any order ("Step 2" before "Step 1" half the time). created_at is now the
-- time each row is written, as ticket events' already is.
alter table public.ticket_messages alter column created_at set default clock_timestamp();
