-- A Clerk user's deletion is remembered with its version (review, issue 14).
--
-- A membership event retried after its user's deletion had committed found no login and
-- took the user for one not received yet: 409 related_event_pending, retried by Svix for
-- a day before it was ignored (one racing the deletion was ignored at once: 743b444).
-- The newest event applied per object (20261205205000) now says whether it deleted the
-- object; a membership of a user whose newest event was their deletion is ignored at once
-- (shared/webhooks/clerk.ts). Clerk never reuses a user id.
alter table private.clerk_object_versions add column deleted boolean not null default false;
comment on column private.clerk_object_versions.deleted is
  'Whether the newest event applied to the object deleted it (user.deleted)';
