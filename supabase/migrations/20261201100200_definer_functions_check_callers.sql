-- Issue 9: definer functions that API roles could execute acted on whatever tenant an
-- argument named: next_ticket_number advanced another tenant's gap-free counter,
-- is_member and check_ticket_assignee answered who belongs to another tenant,
-- auto_assignee locked and rotated another tenant's team, apply_sla read another
-- tenant's SLA policy, claim_idempotency_key wrote keys under another tenant. Every
-- function executable by anon or authenticated now either is not executable by them
-- (called only by triggers and other definer code) or checks the caller's right to the
-- tenant it is given (PT404: not yours; PT403: yours but read-only).

-- ------------------------------------------------------------------ ticket creation

-- The ticket insert trigger ran as the invoker so that `current_user` told an API
-- request from a trusted path, and it called the privileged helpers as the requesting
-- role, which is why they were granted to authenticated. It is split in two: the
-- invoker part keeps only what concerns API requests (who the requester is, what a
-- customer may set); the rules that hold for every insert run as the owner, in a
-- definer trigger that fires right after it (triggers fire in name order), so the
-- helpers need no grant to API roles.
create or replace function private.tickets_before_insert() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_role text;
begin
  -- Requests from the API: the caller is the requester unless staff file it for a member;
  -- customers cannot route or assign their own tickets.
  if current_user = 'authenticated' then
    v_role := private.role_in(new.tenant_id);
    if v_role is null then
      raise exception 'not a member of this tenant' using errcode = '42501';
    end if;
    if new.created_by is null or v_role = 'user' then
      new.created_by := private.current_user_id();
    end if;
    if v_role = 'user' and (new.assigned_to is not null or new.team_id is not null) then
      raise exception 'customers cannot assign or route tickets' using errcode = 'PT403';
    end if;
    if v_role = 'user' then
      new.due_date := null; -- the SLA policy decides a customer's due date
    end if;
  end if;
  return new;
end;
$$;

create function private.tickets_insert_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- The requester is a member of the tenant (platform admins may file anywhere).
  if new.created_by is not null and not private.is_member(new.tenant_id, new.created_by)
     and not exists (select 1 from public.platform_admins p where p.user_id = new.created_by) then
    raise exception 'the requester must be a member of this tenant'
      using errcode = '23503', constraint = 'tickets_tenant_id_created_by_fkey';
  end if;
  if new.status <> 'open' or new.merged_into_id is not null or new.first_response_at is not null
     or new.resolved_at is not null or new.closed_at is not null
     or new.sla_first_response_breached_at is not null or new.sla_resolution_breached_at is not null then
    raise exception 'a new ticket starts open, with no history' using errcode = '23514', constraint = 'tickets_new_state_check';
  end if;

  new.number := private.next_ticket_number(new.tenant_id);

  if new.assigned_to is null and new.team_id is not null then
    new.assigned_to := private.auto_assignee(new.tenant_id, new.team_id);
  end if;
  perform private.check_ticket_assignee(new.tenant_id, new.assigned_to);
  if new.due_date is null then
    new := private.apply_sla(new);
  else
    new.first_response_due_at := (private.apply_sla(new)).first_response_due_at;
  end if;
  return new;
end;
$$;
create trigger tickets_before_insert_rules before insert on public.tickets
  for each row execute function private.tickets_insert_rules();

revoke all on function private.tickets_insert_rules() from public, anon, authenticated, service_role;
-- Called only by the definer triggers above and by tickets_before_update (definer).
revoke all on function private.next_ticket_number(uuid), private.is_member(uuid, uuid),
  private.auto_assignee(uuid, uuid), private.apply_sla(public.tickets), private.check_ticket_assignee(uuid, uuid)
  from public, anon, authenticated, service_role;

-- Read only by the Supabase Auth trigger and token hook (both definer).
revoke all on function private.setting(text) from public, anon, authenticated, service_role;

-- Pure helpers evaluated inside the API roles' own statements (a generated column, a
-- check constraint, policies): executable, but by the API roles only, not by PUBLIC.
revoke all on function private.tags_text(text[]) from public, anon;
grant execute on function private.tags_text(text[]) to authenticated, service_role;

-- ------------------------------------------------------------------ the shared check

-- For definer functions that write in the tenant their caller names: PT404 when the
-- caller is not a member there (or the request's active tenant is another one), PT403
-- when the tenant is suspended (read-only). Platform admins may act in any tenant, as
-- the policies let them. Not executable by API roles: definer code calls it.
create function private.assert_writable_tenant(p_tenant_id uuid) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if private.is_platform_admin() then
    return;
  end if;
  if p_tenant_id is null or p_tenant_id <> all (private.tenant_ids('user')) then
    raise exception 'tenant not found' using errcode = 'PT404';
  end if;
  if p_tenant_id <> all (private.tenant_ids('user', true)) then
    raise exception 'the tenant is suspended; it is read-only until resumed' using errcode = 'PT403';
  end if;
end;
$$;
revoke all on function private.assert_writable_tenant(uuid) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ idempotency keys

-- Only in a tenant the caller may write in (tickets are created only there).
create or replace function private.claim_idempotency_key(p_tenant_id uuid, p_key text, p_request_hash text)
returns table (claimed boolean, request_hash text, status_code int, response jsonb)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
begin
  perform private.assert_writable_tenant(p_tenant_id);
  delete from private.idempotency_keys k
  where k.tenant_id = p_tenant_id and k.user_id = v_user and k.key = p_key and k.created_at < now() - interval '24 hours';
  insert into private.idempotency_keys (tenant_id, user_id, key, request_hash)
  values (p_tenant_id, v_user, p_key, p_request_hash)
  on conflict do nothing;
  if found then
    return query select true, p_request_hash, null::int, null::jsonb;
  else
    return query select false, k.request_hash, k.status_code, k.response from private.idempotency_keys k
      where k.tenant_id = p_tenant_id and k.user_id = v_user and k.key = p_key;
  end if;
end;
$$;

create or replace function private.store_idempotent_response(p_tenant_id uuid, p_key text, p_status_code int, p_response jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  perform private.assert_writable_tenant(p_tenant_id);
  update private.idempotency_keys k set status_code = p_status_code, response = p_response
  where k.tenant_id = p_tenant_id and k.user_id = private.current_user_id() and k.key = p_key;
end;
$$;

-- ------------------------------------------------------------------ attachments

-- The storage confirmed the bytes arrived (the function checks before it calls this).
-- Only for a ticket the caller sees; in a read-only (suspended) tenant it records
-- nothing, so reading an attachment there still works but writes no row.
create or replace function private.mark_attachment_uploaded(p_tenant_id uuid, p_attachment_id uuid) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ticket uuid;
begin
  select a.ticket_id into v_ticket from public.attachments a where a.tenant_id = p_tenant_id and a.id = p_attachment_id;
  if v_ticket is null or not private.can_see_ticket(p_tenant_id, v_ticket) then
    raise exception 'attachment not found' using errcode = 'PT404';
  end if;
  if p_tenant_id <> all (private.tenant_ids('user', true)) and not private.is_platform_admin() then
    return;
  end if;
  update public.attachments set status = 'uploaded'
  where tenant_id = p_tenant_id and id = p_attachment_id and status = 'pending';
end;
$$;

-- ------------------------------------------------------------------ from now on

-- Postgres makes every new function executable by PUBLIC. Functions the migration role
-- creates from here on are executable only by whom a migration grants it to.
alter default privileges revoke execute on functions from public;
