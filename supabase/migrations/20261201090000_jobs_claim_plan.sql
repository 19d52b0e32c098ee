-- Claims cost one batch, however many jobs are due or were done.
--
-- The claim in private.claim_jobs takes the first due jobs in (run_at, id) order with
-- LIMIT and SKIP LOCKED, then updates them by id; the completion it runs first deletes
-- jobs by id. Each step has one good plan: an ordered scan of jobs_due_idx that stops
-- after the batch, and primary-key lookups. But the jobs table is usually near-empty
-- when autovacuum last analysed it, so the planner believes a handful of rows exist and
-- picks, when a burst arrives,
--   * a bitmap scan plus a sort for the claim: every claim reads and sorts every due job
--     (measured with 20,000 due: 9.8 ms per claim of 10, against 0.7 ms in index order;
--     a burst drains in quadratic time), and never marks dead index entries;
--   * a sequential scan for the update by id: every claim reads the whole heap, with the
--     garbage of every job done since the last vacuum.
-- With these plans the queue bench ran at 0.57–0.75× a raw SKIP LOCKED loop whose table
-- has a plain index; with the index plans, 1.0× (both in tests/bench/queue.bench.ts).
--
-- So the plan is pinned for the claim function alone: no bitmap scans, no sorts, no
-- sequential scans, which leaves the index scans. Every statement in it has an index
-- for its access (jobs_due_idx, jobs_pkey, jobs_queue_idx), so nothing is left without
-- a plan. tests/jobs/claim-plan.test.ts counts the index entries and heap rows one claim
-- reads.
alter function private.claim_jobs(text, int, int, text[], bigint[])
  set enable_bitmapscan = off
  set enable_sort = off
  set enable_seqscan = off;
