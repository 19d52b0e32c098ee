-- Local development data, loaded once by `npm start` on a fresh database.
-- Identities are mapped for the three local issuers `npm start` configures, so
-- `npm run token -- <email> --issuer supabase|clerk|supertokens` works for each person.

insert into public.tenants (id, name, slug, plan) values
  ('10000000-0000-4000-8000-000000000001', 'Acme Corporation', 'acme', 'pro'),
  ('10000000-0000-4000-8000-000000000002', 'Globex Inc', 'globex', 'starter');

insert into public.users (id, email, first_name, last_name) values
  ('00000000-0000-4000-8000-000000000001', 'super@platform.local', 'Sam', 'Super'),
  ('00000000-0000-4000-8000-000000000011', 'admin@acme.test', 'Ada', 'Admin'),
  ('00000000-0000-4000-8000-000000000012', 'agent@acme.test', 'Alan', 'Agent'),
  ('00000000-0000-4000-8000-000000000013', 'user@acme.test', 'Uma', 'User'),
  ('00000000-0000-4000-8000-000000000021', 'admin@globex.test', 'Gail', 'Admin'),
  ('00000000-0000-4000-8000-000000000022', 'agent@globex.test', 'Gus', 'Agent'),
  ('00000000-0000-4000-8000-000000000023', 'user@globex.test', 'Gwen', 'User');

insert into public.platform_admins (user_id) values ('00000000-0000-4000-8000-000000000001');

insert into public.user_identities (issuer, subject, user_id)
select issuer, subject, user_id from (
  select u.id as user_id,
         split_part(u.email, '@', 1) || '_' || split_part(split_part(u.email, '@', 2), '.', 1) as handle
  from public.users u
) p
cross join lateral (values
  ('http://127.0.0.1:54321/auth/v1', p.user_id::text),
  ('http://127.0.0.1:54321/dev-issuers/clerk', 'user_' || p.handle),
  ('http://127.0.0.1:54321/dev-issuers/supertokens', 'st-' || p.handle)
) v(issuer, subject);

insert into public.tenant_org_links (tenant_id, issuer, org_id) values
  ('10000000-0000-4000-8000-000000000001', 'http://127.0.0.1:54321/dev-issuers/clerk', 'org_acme'),
  ('10000000-0000-4000-8000-000000000002', 'http://127.0.0.1:54321/dev-issuers/clerk', 'org_globex');

insert into public.memberships (tenant_id, user_id, role) values
  ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000011', 'admin'),
  ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000012', 'agent'),
  ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000013', 'user'),
  ('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000021', 'admin'),
  ('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000022', 'agent'),
  ('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000023', 'user');

insert into public.teams (tenant_id, id, name, department, lead_user_id) values
  ('10000000-0000-4000-8000-000000000001', '20000000-0000-4000-8000-000000000001', 'Support Tier 1', 'support', '00000000-0000-4000-8000-000000000012'),
  ('10000000-0000-4000-8000-000000000002', '20000000-0000-4000-8000-000000000002', 'Sales', 'sales', '00000000-0000-4000-8000-000000000022');

insert into public.team_members (tenant_id, team_id, user_id) values
  ('10000000-0000-4000-8000-000000000001', '20000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000012'),
  ('10000000-0000-4000-8000-000000000002', '20000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000022');
