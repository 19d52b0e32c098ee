-- 20261208105000 redefined private.voice_call_ended with `create or replace`, which
-- replaces a function's SET clauses too: the lock_timeout of 30 s that
-- 20261206034000 gave it (the provider's call events run it outside a transaction of
-- theirs) was lost, and an end queued behind a lock held its connection without bound.
-- Set again.
alter function private.voice_call_ended(uuid, text, text, timestamptz, integer, text, numeric, text, text)
  set lock_timeout = '30s';
