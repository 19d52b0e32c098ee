-- Who created a macro, a canned response or an automation rule is the caller, not what
-- the client says (issue 16 review). The three tables grant INSERT on created_by so the
-- functions could fill it in, which also let any PostgREST client that may create a row
-- name someone else as its author. A trigger now sets it from the request's caller
-- (private.current_user_id: the person, or the creator of the API key used), whatever was
-- sent; with no caller (the service role, migrations, seeds) the value given stands.
-- The audit trail always had the real actor; the column now agrees with it.

create function private.created_by_caller() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
begin
  if v_me is not null then
    new.created_by := v_me;
  end if;
  return new;
end;
$$;
revoke all on function private.created_by_caller() from public, anon, authenticated;

create trigger created_by_caller before insert on public.macros
  for each row execute function private.created_by_caller();
create trigger created_by_caller before insert on public.canned_responses
  for each row execute function private.created_by_caller();
create trigger created_by_caller before insert on public.automation_rules
  for each row execute function private.created_by_caller();
