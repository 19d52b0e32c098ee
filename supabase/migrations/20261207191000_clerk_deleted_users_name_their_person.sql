-- A deleted Clerk user's version names the person its login did (review of the Clerk
-- identity sync, issue 14).
--
-- organizationMembership.deleted finds the person through the Clerk login. A user.deleted
-- applied first (Svix delivers concurrently, and retries a failed attempt after the events
-- that followed it) took that login away; for a person with another login (a Supabase
-- sign-up with the same confirmed address), retire_identity leaves the person and their
-- memberships, so the removal, finding no login, was acknowledged as ignored and never
-- sent again: the person kept the membership, admin rights included, through their other
-- login. The order of arrival decided it. Now user.deleted records whom the login named
-- (shared/webhooks/clerk.ts), and a membership removal whose login is gone finds them
-- there.
alter table private.clerk_object_versions add column user_id uuid;
comment on column private.clerk_object_versions.user_id is
  'For a Clerk user deleted (user.deleted): the person its login named here, whom a membership removal arriving after it still removes';
