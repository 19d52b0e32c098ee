-- Tenant core's rules that RLS cannot express, as triggers. Errors use PostgREST's PTxxx
-- codes so direct API clients get the same HTTP status the functions return.

-- ------------------------------------------------------------------ invitations

-- Who invited, and the address in one form, are the database's to say.
create function private.set_invited_by() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.email := lower(btrim(new.email));
  new.invited_by := private.current_user_id();
  return new;
end;
$$;
revoke all on function private.set_invited_by() from public, anon;
create trigger set_invited_by before insert on public.invitations
  for each row execute function private.set_invited_by();

-- ------------------------------------------------------------------ the last admin

-- A tenant never loses its last admin (unless the tenant itself is deleted). The
-- tenant row is the guard (lock level 2, after the membership row being changed), locked
-- FOR NO KEY UPDATE so two admins demoting each other at once cannot both win, while
-- inserts referencing the tenant (KEY SHARE) do not queue behind it.
create function private.keep_last_admin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if old.role <> 'admin' or (tg_op = 'UPDATE' and new.role = 'admin') then
    return coalesce(new, old);
  end if;
  -- The identity provider is authoritative: when it deletes a person or their
  -- membership (a verified webhook, as service_role), the rule yields.
  if coalesce(auth.jwt() ->> 'role', '') = 'service_role' then
    return coalesce(new, old);
  end if;
  select t.status into v_status from public.tenants t where t.id = old.tenant_id for no key update;
  if v_status is null or v_status = 'deleted' then
    return coalesce(new, old);
  end if;
  if not exists (
    select 1 from public.memberships m
    where m.tenant_id = old.tenant_id and m.role = 'admin' and m.id <> old.id
  ) then
    raise exception 'a tenant must keep at least one admin' using errcode = 'PT409';
  end if;
  return coalesce(new, old);
end;
$$;
revoke all on function private.keep_last_admin() from public, anon;
create trigger keep_last_admin before update of role or delete on public.memberships
  for each row execute function private.keep_last_admin();

-- ------------------------------------------------------------------ who changes what

-- Tenant admins may rename their tenant and change its settings; slug, status, plan
-- and deletion belong to super-admins and trusted machine paths.
create function private.guard_tenant_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated'
     and (new.slug, new.status, new.plan, new.deleted_at) is distinct from (old.slug, old.status, old.plan, old.deleted_at)
     and not private.is_platform_admin() then
    raise exception 'only platform admins may change slug, status or plan' using errcode = 'PT403';
  end if;
  return new;
end;
$$;
revoke all on function private.guard_tenant_update() from public, anon;
create trigger guard_tenant_update before update on public.tenants
  for each row execute function private.guard_tenant_update();

-- Users edit their own profile; e-mail and status are changed by super-admins and
-- trusted paths only.
create function private.guard_user_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated'
     and (lower(new.email), new.status, new.deleted_at) is distinct from (lower(old.email), old.status, old.deleted_at)
     and not private.is_platform_admin() then
    raise exception 'only platform admins may change e-mail or status' using errcode = 'PT403';
  end if;
  return new;
end;
$$;
revoke all on function private.guard_user_update() from public, anon;
create trigger guard_user_update before update on public.users
  for each row execute function private.guard_user_update();
