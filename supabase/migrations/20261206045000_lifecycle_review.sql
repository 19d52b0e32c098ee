-- After review of the day's lifecycle changes (20261206038000 to 20261206044000).
--
-- 1. A deleted user's API keys give their places in the plan's api_keys limit back. The
--    foreign key nulls created_by and api_key_guard revokes the key in a BEFORE trigger,
--    which the usage count (fired by an UPDATE naming revoked_at) never saw; and the
--    membership's removal came after created_by was nulled, so it found none to revoke.
--    The user's deletion now revokes their keys first, by an UPDATE the count sees.
-- 2. Keys whose creator left their tenant before 20261206040000 are revoked now, as a
--    removal revokes them since.
-- 3. A person a platform admin disabled stays disabled when their last login goes (a new
--    sign-up would otherwise have made them active); and two of a person's logins deleted
--    at once retire them (each saw the other's still there and kept them).
-- 4. A deleted user's tickets becoming unassigned is an event again (ticket.assigned);
--    only their authorship going (created_by, author_id) is not.
-- 5. A deleted tenant's deliveries queued before the deletion are sent as before: a
--    deletion can be undone within its grace period, and ending them would lose them.
--    Deleted tenants write no new events (webhook_type_wanted, 20261206041000).

create function private.revoke_keys_of_deleted_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.api_keys k set revoked_at = pg_catalog.now() where k.created_by = old.id and k.revoked_at is null;
  return old;
end;
$$;
revoke all on function private.revoke_keys_of_deleted_user() from public, anon, authenticated;
create trigger revoke_keys_of_deleted_user before delete on public.users
  for each row execute function private.revoke_keys_of_deleted_user();

update public.api_keys k set revoked_at = now()
where k.revoked_at is null
  and (k.created_by is null
       or not exists (select 1 from public.memberships m where m.tenant_id = k.tenant_id and m.user_id = k.created_by));

-- Redefined (20261206043000_people_retired_with_their_last_login.sql): ordered by the
-- person's row; the disabled stay disabled.
create or replace function private.retire_identity(p_issuer text, p_subject text) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid;
begin
  select i.user_id into v_user from public.user_identities i where i.issuer = p_issuer and i.subject = p_subject;
  if v_user is null then
    return false;
  end if;
  -- Two logins of one person deleted at once each see the other's still there: the
  -- person's row orders them, so the second sees the first gone and retires the person.
  perform 1 from public.users u where u.id = v_user for no key update;
  delete from public.user_identities where issuer = p_issuer and subject = p_subject;
  -- Another login of theirs remains (Clerk beside Supabase Auth): only this one goes.
  if exists (select 1 from public.user_identities i where i.user_id = v_user) then
    return true;
  end if;
  delete from public.memberships where user_id = v_user;
  -- Someone a platform admin disabled stays disabled (a new sign-up brings back only the
  -- retired, not the disabled).
  update public.users set status = case when status = 'disabled' then 'disabled' else 'deleted' end, deleted_at = now()
  where id = v_user;
  return true;
end;
$$;

-- Redefined (20261206038000_user_deletion.sql): unassignment is an event.
create or replace function private.webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row jsonb;
  v_type text;
  v_key text;
begin
  -- Nobody listens in this tenant: nothing to build (emit_webhook_event checks the event
  -- type; this spares the row's rendering for the tenants without endpoints).
  if not exists (select 1 from public.webhook_endpoints e
                 where e.tenant_id = case when tg_op = 'DELETE' then old.tenant_id else new.tenant_id end
                   and e.enabled) then
    return null;
  end if;
  -- A person deleted from the platform: the foreign keys null their references
  -- (ON DELETE SET NULL). Their authorship going is no change to tell receivers of, and
  -- the event would send the row again (every message of theirs, in full) as they are
  -- being removed. A ticket they were assigned becoming unassigned is one (ticket.assigned).
  -- (Only such updates: one that changes nothing else is as before.)
  if tg_op = 'UPDATE' and exists (
    select 1 from jsonb_each(to_jsonb(new)) n
    where n.key in ('author_id', 'created_by') and n.value = 'null'::jsonb
      and (to_jsonb(old) -> n.key) <> 'null'::jsonb
      and not exists (select 1 from public.users u where u.id = (to_jsonb(old) ->> n.key)::uuid)
  ) and not exists (
    select 1 from jsonb_each(to_jsonb(new)) n
    where n.key not in ('updated_at', 'search') and n.value is distinct from (to_jsonb(old) -> n.key)
      and not (n.value = 'null'::jsonb and n.key in ('author_id', 'created_by')
               and not exists (select 1 from public.users u where u.id = (to_jsonb(old) ->> n.key)::uuid))
  ) then
    return null;
  end if;
  v_row := private.api_timestamps(to_jsonb(coalesce(new, old)), tg_relid);
  v_row := v_row - array(select k from jsonb_object_keys(v_row) k where k like '%\_encrypted' or k = 'search');
  case tg_table_name
    when 'tickets' then
      v_key := 'ticket:' || (v_row ->> 'id');
      v_type := case
        when tg_op = 'INSERT' then 'ticket.created'
        when tg_op = 'DELETE' or (new.deleted_at is not null and old.deleted_at is null) then 'ticket.deleted'
        when new.status is distinct from old.status then 'ticket.status_changed'
        when new.assigned_to is distinct from old.assigned_to then 'ticket.assigned'
        else 'ticket.updated' end;
      if tg_op = 'UPDATE' and (to_jsonb(new) - 'updated_at' - 'search') = (to_jsonb(old) - 'updated_at' - 'search') then
        return null; -- activity only (updated_at): not an event
      end if;
    when 'ticket_messages' then
      v_key := 'ticket:' || (v_row ->> 'ticket_id');
      v_type := case when (v_row ->> 'type') = 'note' then 'note.' else 'message.' end
        || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end;
    when 'memberships' then
      v_key := 'membership:' || (v_row ->> 'user_id');
      v_type := 'membership.' || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end;
    when 'tenant_services' then
      if tg_op = 'UPDATE' and new.state is not distinct from old.state then
        return null;
      end if;
      v_key := 'service:' || (v_row ->> 'service');
      v_type := 'service.state_changed';
  end case;
  perform private.emit_webhook_event((v_row ->> 'tenant_id')::uuid, v_type, v_key,
    jsonb_build_object('type', v_type, 'tenant_id', v_row ->> 'tenant_id', 'data', v_row,
                       'occurred_at', private.api_timestamp(clock_timestamp())));
  return null;
end;
$$;

-- Redefined (20261206041000_inactive_tenants_left_alone.sql): as in
-- 20261202100300_webhooks_off_plan.sql, the plan alone decides.
create or replace function private.webhook_delivery_withheld(p_delivery_id bigint) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_tenant uuid;
begin
  select d.tenant_id into v_tenant from private.webhook_deliveries d where d.id = p_delivery_id and d.status = 'pending';
  if v_tenant is null or private.tenant_has_feature(v_tenant, 'outbound_webhooks') then
    return false;
  end if;
  update private.webhook_deliveries d
  set status = 'failed', last_error = 'not sent: the tenant''s plan does not include outbound_webhooks'
  where d.id = p_delivery_id and d.status = 'pending';
  return true;
end;
$$;
