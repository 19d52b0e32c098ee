-- Clerk events older than one already applied to the same object change nothing (issue
-- 14, review of the webhooks).
--
-- Svix does not deliver in order: an event whose first attempts failed is retried for
-- days, after the events that followed it. A late organizationMembership.created, applied
-- after the organizationMembership.deleted that ended it, gave the person their access
-- back; a late user.updated after user.deleted found the retired person by e-mail and made
-- them active again. The inbox (one row per svix-id) stops a repeated delivery of one
-- event, not an older event arriving after a newer one.
--
-- Each Clerk event carries the time it happened (its payload's `timestamp`, milliseconds,
-- the same on every retry). The newest applied per object is kept here: a user, an
-- organisation, a membership (organisation and user). An event older than it is
-- acknowledged and ignored (shared/webhooks/clerk.ts).
create table private.clerk_object_versions (
  issuer text not null,
  object text not null check (char_length(object) <= 300),
  event_at timestamptz not null,
  primary key (issuer, object)
);
comment on table private.clerk_object_versions is
  'The time of the newest Clerk event applied per object (user:<id>, organization:<id>, membership:<org id>:<user id>)';
revoke all on private.clerk_object_versions from public, anon, authenticated;
grant select, insert, update on private.clerk_object_versions to service_role;
