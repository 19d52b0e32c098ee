-- The caller's team keys read through team_members (tenant_id, user_id).
--
-- private.my_team_keys() runs in every ticket statement (the policies of tickets, their
-- messages and attachments). It compared user_id with a function call, which the
-- planner keeps as a filter: with tenant_id = any (...) as the only index condition it
-- walked the primary key over every team membership of each of the caller's tenants
-- (tests/schema/endpoint-plans.test.ts found it on a mid-size dataset: "tenant-wide
-- Index Scan on team_members_pkey filtered by user_id"). The caller and their tenants
-- are now values first, so both columns are index conditions of team_members_user_idx.
create or replace function private.my_team_keys() returns text[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
  v_tenants uuid[] := private.tenant_ids('agent');
  v_keys text[];
begin
  if v_user is null or cardinality(v_tenants) = 0 then
    return '{}';
  end if;
  select coalesce(array_agg(tm.tenant_id::text || '/' || tm.team_id::text), '{}') into v_keys
  from public.team_members tm
  where tm.user_id = v_user
    and tm.tenant_id = any (v_tenants);
  return v_keys;
end;
$$;
