-- A tenant's plan is not told to people outside it (issues 14 and 15).
--
-- The features are checked by before-row triggers (private.assert_feature, a definer),
-- and PostgreSQL checks a policy's WITH CHECK after the before-row triggers: anyone
-- signed in who wrote a row under another tenant's id — a voice agent, a customer, a
-- knowledge base, a webhook endpoint, a service, an SLA's business hours — was answered
-- feature_not_in_plan with that tenant's plan where it lacked the feature, and the
-- policy's refusal where it had it: the tenant's plan and features, read by id. (Found
-- while moving the knowledge quota's early look after the policy,
-- 20261203233000_knowledge_quota_precheck_after_rls.sql.)
--
-- Now an API caller (anon, authenticated) outside the tenant passes the feature check
-- untold and the table's policy refuses the write (42501), as for a tenant that does not
-- exist. The tenant's own people, platform admins and the machine paths (service role,
-- the database's own roles) are answered as before.

-- Whether the caller is an API role (anon, authenticated) outside the tenant: not one of
-- its people in this request's tenant, nor a platform admin. A definer keeps the caller's
-- role setting: PostgREST's and the functions' request transactions set it to the API
-- role; the machine paths (service role, the database's own roles) are never outside.
create function private.outside_tenant(p_tenant_id uuid) returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
    and not (p_tenant_id = any (private.tenant_ids('user')) or private.is_platform_admin());
end;
$$;
revoke all on function private.outside_tenant(uuid) from public, anon, authenticated;

-- Redefined (20261202070000_plans.sql): silent for an API caller outside the tenant.
create or replace function private.assert_feature(p_tenant_id uuid, p_feature text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not private.tenant_has_feature(p_tenant_id, p_feature) then
    if private.outside_tenant(p_tenant_id) then
      return;
    end if;
    raise exception 'The tenant''s plan does not include %', p_feature
      using errcode = 'PT403',
            detail = jsonb_build_object('code', 'feature_not_in_plan', 'details', jsonb_build_object(
              'feature', p_feature, 'plan', (select t.plan from public.tenants t where t.id = p_tenant_id)))::text;
  end if;
end;
$$;

-- Redefined (20261202190500_voice_numbers_review.sql): nothing for an API caller outside
-- the tenant.
create or replace function private.claim_voice_number() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_holder uuid;
  v_holder_deleted boolean;
begin
  -- An outsider's insert is the policy's to refuse: claiming the number first answered
  -- a foreign-key error for a tenant that does not exist (and the policy's for one that
  -- does), and a number's holder for a taken one.
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  if tg_op = 'UPDATE' and new.phone = old.phone and not (new.active and not old.active) then
    return new;
  end if;
  for i in 1..3 loop
    select n.tenant_id, t.status = 'deleted' into v_holder, v_holder_deleted
    from private.voice_numbers n join public.tenants t on t.id = n.tenant_id
    where n.phone = new.phone
    for share of n;
    if found and v_holder_deleted and v_holder is distinct from new.tenant_id then
      perform private.assert_feature(new.tenant_id, 'voice');
      update private.voice_numbers n set tenant_id = new.tenant_id, held_since = now()
      where n.phone = new.phone and n.tenant_id = v_holder;
      if found then
        return new;
      end if;
      continue;
    end if;
    if found then
      exit;
    end if;
    -- Free: claiming it is taking a number on the router.
    perform private.assert_feature(new.tenant_id, 'voice');
    insert into private.voice_numbers (phone, tenant_id) values (new.phone, new.tenant_id)
    on conflict (phone) do nothing;
    if found then
      return new;
    end if;
  end loop;
  if v_holder is distinct from new.tenant_id then
    raise exception 'phone is already taken' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'already_exists', 'details', jsonb_build_object(
        'fields', jsonb_build_array(jsonb_build_object('field', 'phone', 'message', 'is already taken'))))::text;
  end if;
  return new;
end;
$$;
