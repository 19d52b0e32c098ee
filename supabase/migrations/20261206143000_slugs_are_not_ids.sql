-- A tenant's slug may not be shaped like a tenant id. X-Tenant-Id takes either, and
-- private.request_tenant_id matched `id::text = name or slug = name` taking whichever
-- row came first: the owner of a tenant slugged with another tenant's id could have a
-- person who belongs to both act, and be counted, in the wrong tenant when they named
-- the other one by its id. Slugs of that shape are refused now (the API says so, a
-- Clerk organisation slugged so gets an `org-` prefix); any already stored one is
-- renamed with a `t-` prefix first, which keeps it a valid, unique slug.
update public.tenants set slug = 't-' || slug
where slug ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
alter table public.tenants add constraint tenants_slug_not_an_id
  check (slug !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');
