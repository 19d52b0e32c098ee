-- Teams are staff: a customer is not added to one, and an agent demoted to customer leaves
-- theirs (review of teams, issue 14).
--
-- team_members took any member of the tenant, and a demotion removed the person's
-- assignments and follows but not their teams. A customer on a team was listed to every
-- other customer reading team_members (memberships hide customers from customers), and a
-- demoted agent promoted again was back in every queue they had been on, silently, where
-- follows were made not to survive a demotion. Now adding a customer is refused with 409
-- `not_staff` (the membership read FOR SHARE, so a demotion under way is waited for and
-- seen), and a demotion deletes the person's team memberships; customers already on a
-- team leave it here.

create function private.team_member_is_staff() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text;
begin
  select m.role into v_role from public.memberships m
  where m.tenant_id = new.tenant_id and m.user_id = new.user_id
  for share;
  -- No member at all: the foreign key says so.
  if v_role = 'user' then
    raise exception 'Only staff of the tenant (agents and admins) can be on a team' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_staff', 'details', jsonb_build_object('user_id', new.user_id))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.team_member_is_staff() from public, anon, authenticated;
create trigger team_member_is_staff before insert or update of tenant_id, user_id on public.team_members
  for each row execute function private.team_member_is_staff();

-- After the membership row the demotion changes (locked first), the person's team rows.
create function private.drop_teams_on_demotion() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role = 'user' and old.role <> 'user' then
    delete from public.team_members tm where tm.tenant_id = new.tenant_id and tm.user_id = new.user_id;
  end if;
  return null;
end;
$$;
revoke all on function private.drop_teams_on_demotion() from public, anon, authenticated;
create trigger drop_teams_on_demotion after update of role on public.memberships
  for each row execute function private.drop_teams_on_demotion();

delete from public.team_members tm
using public.memberships m
where m.tenant_id = tm.tenant_id and m.user_id = tm.user_id and m.role = 'user';
