-- SLA business hours count only while the tenant's plan includes them (review, issue 14).
--
-- The sla_business_hours feature was checked when business hours were written
-- (20261202071000), never when they were used: a tenant that lost the feature (an
-- override, a plan without it) kept every due date, pause and timed rule counted in
-- business time, while its other features stop with the plan (services paused, webhook
-- events no longer written, voice refused). A policy's business hours now count as none
-- (24/7) while the tenant lacks the feature, and count again if it comes back; the hours
-- stay stored. Every reader of a ticket's policy asks private.sla_policy_for (due dates,
-- reopening, pauses, the SLA and automation sweeps), so it answers the policy as it
-- applies.

-- Redefined (20261202141000_sla_policies_per_team.sql): business hours only with the feature.
create or replace function private.sla_policy_for(p_tenant_id uuid, p_team_id uuid, p_priority text) returns public.sla_policies
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v public.sla_policies;
begin
  select s.* into v from public.sla_policies s
  where s.tenant_id = p_tenant_id and s.priority = p_priority
    and (s.team_id is null or s.team_id = p_team_id)
  order by s.team_id nulls last
  limit 1;
  if v.business_hours is not null and not private.tenant_has_feature(p_tenant_id, 'sla_business_hours') then
    v.business_hours := null;
  end if;
  return v;
end;
$$;
