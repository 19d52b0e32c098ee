-- Issue 9: the caller's teams as tenant-qualified keys. private.my_team_ids() returned
-- bare team ids, and the tickets policies compared `team_id = any (…)` against tickets
-- of every tenant the caller is an agent in: a team of tenant B whose id equals a team
-- of tenant A opened A's team tickets (internal notes included) to B's members. Team
-- ids are unique only within their tenant ((tenant_id, id) is the key), so the helper
-- now returns '<tenant_id>/<team_id>' keys and every comparison builds the same key
-- from the row's own tenant_id and team_id.
--
-- Text keys rather than a composite type: measured on a million rows, `text = any
-- (text[])` costs about 1.5 times a bare `uuid = any (uuid[])`, a composite
-- `(tenant_id, team_id)::type = any (type[])` about 5 times (record_eq per element).
-- Both sides are built as tenant_id::text || '/' || team_id::text (uuid text output
-- is fixed-width, so the key is unambiguous).

create function private.my_team_keys() returns text[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_keys text[];
begin
  select coalesce(array_agg(tm.tenant_id::text || '/' || tm.team_id::text), '{}') into v_keys
  from public.team_members tm
  where tm.user_id = private.current_user_id()
    and tm.tenant_id = any (private.tenant_ids('agent'));
  return v_keys;
end;
$$;
revoke all on function private.my_team_keys() from public, anon;
grant execute on function private.my_team_keys() to authenticated, service_role;

alter policy tickets_select on public.tickets
  using (
    tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and (
      (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) and created_by = (select private.current_user_id()))
      or (tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) and (
        assigned_to = (select private.current_user_id()) or created_by = (select private.current_user_id())
        or (tenant_id::text || '/' || team_id::text) = any ((select private.my_team_keys())::text[])))
    ))
  );

alter policy tickets_update on public.tickets
  using (
    tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) and (
      assigned_to = (select private.current_user_id()) or created_by = (select private.current_user_id())
      or (tenant_id::text || '/' || team_id::text) = any ((select private.my_team_keys())::text[])))
  );

-- The tickets RLS predicate for definer paths, kept equal to tickets_select by a test.
create or replace function private.can_see_ticket(p_tenant_id uuid, p_ticket_id uuid) returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_role text := private.role_in(p_tenant_id);
begin
  return exists (
    select 1 from public.tickets t
    where t.tenant_id = p_tenant_id and t.id = p_ticket_id
      and (
        v_role in ('admin', 'super_admin')
        or (t.deleted_at is null and v_role = 'agent'
            and (t.assigned_to = v_me or t.created_by = v_me
                 or (t.tenant_id::text || '/' || t.team_id::text) = any (private.my_team_keys())))
        or (t.deleted_at is null and v_role = 'user' and t.created_by = v_me)
      )
  );
end;
$$;

-- Nothing may compare bare team ids any more.
drop function private.my_team_ids();
