-- private.verify_api_key waits a bounded time for a lock when called in a statement of its
-- own (review of this stop's rate-limit changes, issue 14).
--
-- A key whose request carries a body no count has verified (a read sent as POST, counting
-- off) is now verified in a statement of its own before the body is read, outside any
-- transaction of the functions (so no BEGIN sets a lock timeout), as the call path's
-- verification and count already were. Like every private function the code calls so,
-- it carries its own lock_timeout (20261206034000): a wait behind a lock nobody lets go is
-- a 503 `timeout`, not a request hung for as long as the lock is held.
alter function private.verify_api_key(uuid, text, text) set lock_timeout = '30s';
