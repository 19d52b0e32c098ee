-- Chatwoot kept working for a tenant whose plan no longer includes it. Taking the feature
-- away suspends the service (20261206052000, services_follow_the_plan), but the inbound
-- webhook took any service not removed and the reply queue looked at nothing: signed
-- events still became tickets (counted against tickets_per_month) and staff replies were
-- still posted to Chatwoot, until the provision job had suspended the account there, and
-- for good when that job kept failing. Both now ask the plan: an inbound event is 403
-- `feature_not_in_plan`, and a reply queued is not sent (its job fails for good, the
-- reply marked failed with the reason). The plan, read through the one rule every
-- feature check uses (private.tenant_has_feature), for the webhook's and the reply job's
-- service-role paths.
create function private.chatwoot_in_plan(p_tenant_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select private.tenant_has_feature(p_tenant_id, 'chatwoot');
$$;
revoke all on function private.chatwoot_in_plan(uuid) from public, anon, authenticated;
grant execute on function private.chatwoot_in_plan(uuid) to service_role;
