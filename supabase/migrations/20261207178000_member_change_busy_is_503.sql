-- A member change refused because the caller's own membership is being changed answers
-- 503 on both paths (review of 20261207164000, issue 14).
--
-- The caller's membership is read FOR SHARE NOWAIT; when another transaction holds it
-- (their removal or demotion, or any write of that row), the read fails with 55P03. The
-- functions answered that 503, but PostgREST answers a 55P03 with 500, so a client going
-- straight to the table was told the server had failed rather than to retry. The
-- refusal is now raised as PT503 (PostgREST: HTTP 503; the functions: 503 `retry`).

-- Redefined (20261207164000_member_changes_fail_fast_on_own_change.sql): PT503.
create or replace function private.member_change_by_admin_in_office() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_caller uuid := private.current_user_id();
begin
  -- Members' own requests only (PostgREST's and the functions' role): the trusted paths
  -- (service_role's webhooks and jobs, migrations, operators) are not judged here.
  if pg_catalog.current_setting('role', true) is distinct from 'authenticated' or v_caller is null
     or private.is_platform_admin() then
    return coalesce(new, old);
  end if;
  if tg_op = 'DELETE' and old.user_id = v_caller then
    return old; -- leaving (the policies decide whether they may)
  end if;
  if tg_op = 'UPDATE' and new.role is not distinct from old.role then
    return new; -- the role named but not changed (the members API sets it with others)
  end if;
  begin
    if not exists (
      select 1 from public.memberships m join public.users u on u.id = m.user_id
      where m.tenant_id = old.tenant_id and m.user_id = v_caller and m.role = 'admin' and u.status = 'active'
      for share of m nowait
    ) then
      raise exception 'Only an admin of the tenant changes its members'' roles or removes them'
        using errcode = 'PT403';
    end if;
  exception when lock_not_available then
    -- PT503, which PostgREST answers as 503 (a 55P03 would be its 500).
    raise exception 'The caller''s own membership is being changed; retry in a moment'
      using errcode = 'PT503', detail = '{"code": "retry"}';
  end;
  return coalesce(new, old);
end;
$$;
