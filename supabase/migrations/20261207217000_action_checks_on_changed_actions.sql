-- A macro's or rule's actions are checked when they change, not at every edit of the row,
-- and teams are taken before templates (review of this stop's 20261207210000, issue 14).
--
-- The checks of what actions name (teams, 20261207186000; templates, people and tags,
-- 20261207210000) fired on every update naming the column, and the routes' PATCH always
-- names it (`actions = coalesce(…, actions)`): a rule whose assignee was removed since
-- (which fails its runs, recorded) could then not even be switched off or renamed — 422
-- on actions it was not changing — nor could a macro, and rows written before the checks
-- were frozen alike. Now an update is checked only when its actions (for a macro, also
-- its scope or owner, which decide which templates it may send) change. And the
-- templates' check ran before the teams' (triggers fire by name), locking a template
-- before a team where a team's deletion locks the team before its templates: renamed to
-- run after it.

drop trigger actions_name_existing_targets on public.macros;
drop trigger actions_name_existing_targets on public.automation_rules;
drop trigger actions_name_existing_teams on public.macros;
drop trigger actions_name_existing_teams on public.automation_rules;

create trigger actions_name_existing_teams before insert on public.macros
  for each row execute function private.actions_name_existing_teams();
create trigger actions_name_existing_teams_changed before update of actions on public.macros
  for each row when (old.actions is distinct from new.actions)
  execute function private.actions_name_existing_teams();
create trigger actions_name_existing_teams before insert on public.automation_rules
  for each row execute function private.actions_name_existing_teams();
create trigger actions_name_existing_teams_changed before update of actions on public.automation_rules
  for each row when (old.actions is distinct from new.actions)
  execute function private.actions_name_existing_teams();

create trigger actions_name_existing_teams_then_targets before insert on public.macros
  for each row execute function private.actions_name_existing_targets();
create trigger actions_name_existing_teams_then_targets_changed before update of actions, scope, owner_id on public.macros
  for each row when (old.actions is distinct from new.actions or old.scope is distinct from new.scope
                     or old.owner_id is distinct from new.owner_id)
  execute function private.actions_name_existing_targets();
create trigger actions_name_existing_teams_then_targets before insert on public.automation_rules
  for each row execute function private.actions_name_existing_targets();
create trigger actions_name_existing_teams_then_targets_changed before update of actions on public.automation_rules
  for each row when (old.actions is distinct from new.actions)
  execute function private.actions_name_existing_targets();
