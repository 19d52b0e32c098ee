-- A time-based rule's wait has the same id whatever the session's time zone (review,
-- issue 14).
--
-- The automation sweep names each wait it queues by md5(rule, ticket, since::text) and
-- skips the waits already queued or run by that id. A timestamptz as text follows the
-- session's TimeZone and DateStyle, so a sweep in a session set otherwise (a role's or
-- database's time zone changed, a restore into a cluster set to local time) gave every
-- open wait a new id and ran its rule again: a second reminder, a second close. The
-- sweep now runs in UTC with ISO dates, as every session here does by default, so the ids
-- of the waits already handled stay what they were.
alter function private.run_automation_sweep(timestamptz, int) set timezone = 'UTC';
alter function private.run_automation_sweep(timestamptz, int) set datestyle = 'ISO, MDY';
