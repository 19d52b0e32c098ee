-- Plans (issue 15): what super-admins change for one tenant — its plan overrides and
-- its feature flags — goes to the audit trail like every tenant change, filed under
-- the tenant, with the super-admin as the actor.

select private.enable_audit('private.tenant_plan_overrides');
select private.enable_audit('private.tenant_feature_flags');
