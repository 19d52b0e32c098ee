-- A partner login another tenant still answers for is not deleted (review of the
-- connectors' owner changes, issue 14).
--
-- A login is deleted with a tenant's service only if no other tenant's service uses it
-- (private.partner_id_users, asked by the n8n connector before it deletes one). Only a
-- tenant's current owner counted: a login another tenant keeps as a former owner's —
-- still to be taken out of its project (former_user_ids), or the tenant's own invitation
-- kept to be deleted with it (former_logins), whose shared-mode workflows live in it —
-- was deleted with the first tenant removed, and the other tenant's workflows with it.
-- Those count now too; the last tenant to go deletes it.

-- Redefined (20261201152000_drift_repair.sql): former owners' logins count.
create or replace function private.partner_id_users(p_tenant_id uuid, p_service text, p_key text, p_value text) returns int
language sql stable security definer
set search_path = ''
as $$
  select count(*)::int from public.tenant_services s
  where s.service = p_service and s.tenant_id <> p_tenant_id
    and not (s.desired_state = 'removed' and s.state = 'removed')
    and (s.external_ids ->> p_key = p_value
         or (p_key = 'user_id'
             and (s.external_ids ->> 'former_user_id' = p_value
                  or (jsonb_typeof(s.external_ids -> 'former_user_ids') = 'array'
                      and exists (select 1 from jsonb_array_elements(s.external_ids -> 'former_user_ids') f(id) where f.id #>> '{}' = p_value))
                  or (jsonb_typeof(s.external_ids -> 'former_logins') = 'array'
                      and exists (select 1 from jsonb_array_elements(s.external_ids -> 'former_logins') f(id) where f.id #>> '{}' = p_value)))))
$$;
