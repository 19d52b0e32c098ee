-- A tenant's and a team's name are at most 100 characters as stored, not only once
-- trimmed (review of the tenant administration routes, issue 14).
--
-- The checks bounded char_length(btrim(name)), and btrim strips spaces alone: an admin
-- writing through PostgREST stored "Acme" and any number of trailing spaces (the API trims
-- to 100). Such a name made every `next` cursor of GET /tenants ending on it too long to
-- send back (422 invalid cursor past 200 characters: a platform admin could not page past
-- the tenant), and rode along in every request of its members (the caller's context
-- carries their tenants' names). Names stored so are trimmed — what the API would have
-- stored — and the bound is checked as stored.

update public.tenants set name = btrim(name) where char_length(name) > 100;
update public.teams set name = btrim(name) where char_length(name) > 100;
alter table public.tenants add constraint tenants_name_length check (char_length(name) <= 100);
alter table public.teams add constraint teams_name_length check (char_length(name) <= 100);
