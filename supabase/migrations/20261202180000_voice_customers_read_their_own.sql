-- A tenant's customers (role user) read their own voice data, not every caller's.
--
-- The platform's user is a tenant's customer, who reads the tenant, its teams and its
-- staff but not other customers (README, "Roles and isolation"). The voice tables let
-- every member read every row (20261202090200_voice_customers.sql,
-- 20261202090300_voice_calls.sql), so one customer listed every caller's phone number,
-- e-mail, notes and consents, and read every transcript. The issue's "users read" is
-- kept as tickets keep it: a user reads the voice customer record linked to them
-- (voice_customers.user_id), the calls of that record and their transcripts. Staff
-- (agent, admin) and platform admins read as before. Agents, knowledge bases and their
-- documents stay readable by every member.

-- "tenant/customer" keys of the caller's own voice customer records, in the tenants where
-- the caller is a member: one evaluation per statement, as private.my_team_keys() is for
-- tickets. Security definer: it reads voice_customers without the policy that calls it.
create function private.my_voice_customer_keys() returns text[]
language sql stable security definer
set search_path = ''
as $$
  select coalesce(array_agg(c.tenant_id::text || '/' || c.id::text), '{}')
  from public.voice_customers c
  where c.user_id = (select private.current_user_id())
    and c.tenant_id = any ((select private.tenant_ids('user'))::uuid[])
$$;
revoke all on function private.my_voice_customer_keys() from public, anon;
grant execute on function private.my_voice_customer_keys() to authenticated, service_role;

-- Staff first: an OR is evaluated left to right and stops at the first true, so staff
-- never pay for the customer's clause.
drop policy voice_customers_select on public.voice_customers;
create policy voice_customers_select on public.voice_customers for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
    or (select private.is_platform_admin())
    or (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) and user_id = (select private.current_user_id()))
  );

drop policy voice_calls_select on public.voice_calls;
create policy voice_calls_select on public.voice_calls for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
    or (select private.is_platform_admin())
    or (customer_id is not null
        and (tenant_id::text || '/' || customer_id::text) = any ((select private.my_voice_customer_keys())::text[]))
  );

-- A segment is read with its call: the same clause through the call's customer.
drop policy voice_call_segments_select on public.voice_call_segments;
create policy voice_call_segments_select on public.voice_call_segments for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
    or (select private.is_platform_admin())
    or exists (
      select 1 from public.voice_calls v
      where v.tenant_id = voice_call_segments.tenant_id and v.id = voice_call_segments.call_id
        and v.customer_id is not null
        and (v.tenant_id::text || '/' || v.customer_id::text) = any ((select private.my_voice_customer_keys())::text[])
    )
  );
