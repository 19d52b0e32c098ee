-- An assignment or a new API key waits for a change of its person's membership under way,
-- and is then checked against the outcome; a follow answers 503 (to retry) while one is.
--
-- Each read the person's membership unlocked. A demotion (or a removal) takes that row's
-- lock, and its own clean-up (unassign_on_demotion, drop_follows_on_demotion,
-- revoke_keys_of_former_member) cannot see an uncommitted assignment, follow or key; the
-- foreign keys from tickets, ticket_followers and api_keys take KEY SHARE locks, which a
-- role change does not wait for. So a ticket assigned while its agent was being demoted
-- stayed with a customer (who, through the assignment's follow, then read it), a follow
-- made by an agent being demoted survived the demotion, and a key created by an admin
-- being removed stayed unrevoked (and came back to life if they were invited back). Each
-- now reads the membership FOR SHARE and sees the change's outcome. An assignment and a
-- key wait for a change in progress: the demotion's clean-up takes no lock they hold (the
-- assignment's ticket is not the demoted person's yet). A follow does not wait: it is
-- often made holding its ticket (a mention in a note, a merge, a rule's action), which a
-- demotion's unassigning may be waiting for, the other way round from the lock order
-- (memberships before tickets). So it reads the membership FOR SHARE NOWAIT: a change in
-- progress makes it 55P03, the 503 a client retries, and the retry meets the outcome.

-- Redefined (20261206039000_disabled_people_not_assigned.sql): the membership FOR SHARE
-- (volatile, as a locking read must be).
create or replace function private.check_ticket_assignee(p_tenant_id uuid, p_user_id uuid) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_user_id is not null and not exists (
    select 1 from public.memberships m
    where m.tenant_id = p_tenant_id and m.user_id = p_user_id and m.role in ('agent', 'admin')
    for share
  ) then
    raise exception 'the assignee must be an agent or admin of this tenant'
      using errcode = '23514', constraint = 'tickets_assignee_role_check', column = 'assigned_to';
  end if;
  if p_user_id is not null and not exists (select 1 from public.users u where u.id = p_user_id and u.status = 'active') then
    raise exception 'the assignee is disabled on the platform'
      using errcode = '23514', constraint = 'tickets_assignee_active_check', column = 'assigned_to';
  end if;
end;
$$;

-- Redefined (20261206035000_customer_followers_customers_only.sql): the follower's
-- membership FOR SHARE NOWAIT, before the adder's is read (a person following themself
-- while being demoted is then read as demoted twice).
create or replace function private.ticket_followers_check() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text;
  v_adder_role text;
begin
  -- Someone who may not write in the tenant learns nothing about its people from which
  -- refusal comes back: this trigger runs before the policies, so it refuses as they would.
  if new.reason = 'manual' and private.current_user_id() is not null and not private.is_platform_admin()
     and not (new.tenant_id = any (private.tenant_ids('user', true))) then
    raise exception 'new row violates row-level security policy for table "ticket_followers"' using errcode = '42501';
  end if;
  select m.role into v_role from public.memberships m where m.tenant_id = new.tenant_id and m.user_id = new.user_id
  for share nowait;
  select m.role into v_adder_role from public.memberships m
  where m.tenant_id = new.tenant_id and m.user_id = private.current_user_id();
  -- A customer where customers may not follow: refused as the policies would (this
  -- trigger runs before them), whoever they name. Only for follows added by hand: the
  -- assignment and mention triggers add staff as definer, whoever's change set them off
  -- (a customer's ticket routed and auto-assigned makes its agent a follower).
  if new.reason = 'manual' and v_adder_role = 'user' and not private.is_platform_admin() and not exists (
       select 1 from public.tenants t where t.id = new.tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb) then
    raise exception 'Customers add followers only where the tenant allows it' using errcode = '42501';
  end if;
  if v_role is null then
    -- Nobody of this tenant (another tenant's person, an unknown id): as its foreign key says.
    raise exception 'the follower must be a member of this tenant'
      using errcode = '23503', constraint = 'ticket_followers_tenant_id_user_id_fkey';
  elsif v_role in ('agent', 'admin') then
    if new.reason = 'manual' and v_adder_role = 'user' and not private.is_platform_admin() then
      raise exception 'A customer adds only other customers as followers' using errcode = 'PT409',
        detail = jsonb_build_object('code', 'not_customer', 'details', jsonb_build_object('user_id', new.user_id));
    end if;
  elsif new.reason <> 'manual' or not exists (
               select 1 from public.tenants t where t.id = new.tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb) then
    raise exception 'Only staff of the tenant can follow a ticket (and its customers where the tenant allows it)'
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_staff', 'details', jsonb_build_object('user_id', new.user_id));
  end if;
  -- A follow added by hand is the adder's; one an assignment or a mention makes names
  -- whom its trigger gives, possibly nobody.
  if new.added_by is null and new.reason = 'manual' then
    new.added_by := private.current_user_id();
  end if;
  return new;
end;
$$;

-- Redefined (20261202080200_api_key_owner.sql): the creator's admin membership FOR SHARE,
-- so a removal in progress is waited for and the key refused (404, as for a tenant not
-- theirs).
create or replace function private.create_api_key(
  p_tenant_id uuid, p_name text, p_scopes text[], p_expires_at timestamptz, p_secret_sha256 text
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ctx jsonb := private.caller_context();
  v_id uuid := gen_random_uuid();
begin
  if v_ctx -> 'api_key' is not null then
    raise exception 'An API key cannot create API keys' using errcode = 'PT403', detail = '{"code": "insufficient_scope"}';
  end if;
  if p_tenant_id is null or not (p_tenant_id = any (private.tenant_ids('admin', true))) then
    if p_tenant_id is not null and private.is_platform_admin() and exists (select 1 from public.tenants t where t.id = p_tenant_id) then
      raise exception 'An API key acts as the admin who creates it: only an admin of this tenant may create one'
        using errcode = 'PT403', detail = '{"code": "api_key_owner_required"}';
    end if;
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  perform 1 from public.memberships m
  where m.tenant_id = p_tenant_id and m.user_id = private.current_user_id() and m.role = 'admin'
  for share;
  if not found then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  if p_secret_sha256 is null or p_secret_sha256 !~ '^[0-9a-f]{64}$' then
    raise exception 'The secret hash is malformed' using errcode = 'PT400', detail = '{"code": "bad_request"}';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'expires_at must be in the future' using errcode = 'PT400', detail = '{"code": "expiry_in_past"}';
  end if;
  insert into public.api_keys (tenant_id, id, name, prefix, scopes, expires_at, created_by)
  values (p_tenant_id, v_id, p_name, 'tpk_live_' || left(replace(v_id::text, '-', ''), 8),
          (select coalesce(array_agg(distinct s order by s), '{}') from unnest(p_scopes) s),
          p_expires_at, private.current_user_id());
  insert into private.api_key_secrets (tenant_id, key_id, secret_sha256)
  values (p_tenant_id, v_id, decode(p_secret_sha256, 'hex'));
  return jsonb_build_object('tenant_id', p_tenant_id, 'id', v_id);
end;
$$;
