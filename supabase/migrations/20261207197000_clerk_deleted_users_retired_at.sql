-- When a deleted Clerk user's person was retired here (review of 20261207191000, issue 14).
--
-- A membership removal delivered after its user's deletion finds the person the deletion
-- named (20261207191000) for as long as Svix retries it, days: a person who keeps another
-- login and was invited back to the tenant meanwhile lost the new membership to a late
-- retry. The removal now takes only a membership the person had when the deletion was
-- applied here (this column, the database's clock: Clerk's event times are another
-- clock, and an event delivered late was applied after later ones happened).
alter table private.clerk_object_versions add column retired_at timestamptz;
comment on column private.clerk_object_versions.retired_at is
  'For a Clerk user deleted (user.deleted): when the deletion was applied here; a later membership removal takes only memberships made before it';
