-- A tenant's voice customers need the plan's voice feature on the direct path too (issue
-- 14, review). The API refused creating and importing them without it, but a starter
-- tenant's agents could insert customers through PostgREST — a store of callers'
-- personal data, with customer.created webhooks, on a plan that has no voice. Editing
-- and deleting stay allowed, as for every feature (a downgraded tenant corrects and
-- erases what it has).

-- The feature named by the trigger's argument, for tables whose rule is "inserting needs
-- this feature" and nothing more.
create function private.require_feature_of_trigger() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.assert_feature(new.tenant_id, tg_argv[0]);
  return new;
end;
$$;
revoke all on function private.require_feature_of_trigger() from public, anon, authenticated;

create trigger require_feature before insert on public.voice_customers
  for each row execute function private.require_feature_of_trigger('voice');
