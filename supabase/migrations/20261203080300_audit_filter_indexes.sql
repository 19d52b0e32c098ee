-- The audit trail's filters read through indexes (issue 14 review).
--
-- GET /tenants/{id}/audit takes table_name and action filters; the trail had one index
-- for reading it, (tenant_id, id desc), so a filtered page walked the tenant's entries
-- newest first and threw away every one that did not match — on the dataset of
-- tests/schema/endpoint-plans.test.ts `?action=UPDATE` threw away 60,259 entries for one
-- page, and a rare table or action reads a tenant's whole trail. One index per filter,
-- each ordered as the page is, so a filtered page reads only its own entries. Each
-- costs an index insertion per audited write (measured in tests/bench/audit.bench.ts;
-- the figures are in the README).
create index audit_logs_tenant_table_idx on public.audit_logs (tenant_id, table_name, id desc);
create index audit_logs_tenant_action_idx on public.audit_logs (tenant_id, action, id desc);
