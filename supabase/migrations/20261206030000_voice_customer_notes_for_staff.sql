-- Staff's notes and tags about a caller are not the caller's to read.
--
-- A tenant's customer (role user) read the voice customer record linked to them
-- (20261202180000_voice_customers_read_their_own.sql), every column of it: the notes
-- staff keep about the caller ("shouts at agents, refunds need a manager") and the tags
-- they file them under ("watchlist"), on both paths. RLS filters rows, not columns, and a
-- column grant would break staff's `select *` on the same table, so the row policy is
-- staff's again and the caller's own record is read through
-- private.voice_own_customer_records below: every column but the notes and the tags.
-- Their calls and transcripts are unchanged (private.my_voice_customer_keys() still
-- finds their records, as a definer, for those policies).

drop policy voice_customers_select on public.voice_customers;
create policy voice_customers_select on public.voice_customers for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
    or (select private.is_platform_admin())
  );

-- The caller's own voice customer records in one tenant where they are a member, without
-- staff's notes and tags. A person has one record per tenant at most by practice, a few
-- at worst (rows 5 tells the planner so: the calls list joins it to the calls' customer
-- index). Security definer: the policy above no longer shows them the rows.
create function private.voice_own_customer_records(p_tenant_id uuid)
returns table (
  id uuid,
  tenant_id uuid,
  phone text,
  name text,
  email text,
  user_id uuid,
  recording_consent boolean,
  recording_consent_at timestamptz,
  marketing_consent boolean,
  marketing_consent_at timestamptz,
  created_at timestamptz,
  updated_at timestamptz
)
language sql stable security definer
rows 5
set search_path = ''
as $$
  select c.id, c.tenant_id, c.phone, c.name, c.email, c.user_id, c.recording_consent, c.recording_consent_at,
         c.marketing_consent, c.marketing_consent_at, c.created_at, c.updated_at
  from public.voice_customers c
  where c.tenant_id = p_tenant_id
    and p_tenant_id = any ((select private.tenant_ids('user'))::uuid[])
    and c.user_id = (select private.current_user_id())
$$;
revoke all on function private.voice_own_customer_records(uuid) from public, anon;
grant execute on function private.voice_own_customer_records(uuid) to authenticated, service_role;
