-- A phone number belongs to the tenant whose agents use it (issue 14, review).
--
-- The number was unique only among ACTIVE agents: while tenant B's agent on
-- +14155550123 was parked (being edited, or after a downgrade), tenant A's admin could
-- create an active agent on that number and receive B's callers (their numbers, what
-- they say) — and B could not reactivate. Now the first tenant whose agent (active or
-- not) uses a number holds it, in private.voice_numbers, for as long as any of its
-- agents does; another tenant's agent on it is 409 already_exists naming `phone`, as an
-- active clash already was. Within a tenant, several agents may share a number, one
-- active at a time (the unique index of 20261202090100 stays).
--
-- What this does not decide: who may claim a number nobody holds yet. Proving that a
-- tenant owns a number at the telephony provider needs the provider's account (a
-- platform registry written by operators); until then a number is first come.
--
-- Also: an active agent moved to another number claims that number on the router, so a
-- tenant without the voice feature may not do it (require_feature now also fires on
-- `update of phone`); deactivating, renaming and editing stay allowed without it.

create table private.voice_numbers (
  phone text primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  held_since timestamptz not null default now()
);
create index voice_numbers_tenant_idx on private.voice_numbers (tenant_id);
-- Private schema, not exposed; only the definer triggers below touch it.
alter table private.voice_numbers enable row level security;
revoke all on private.voice_numbers from public, anon, authenticated, service_role;

-- Held by the tenant of the agent that used it first: an active one wins over parked
-- ones, then the oldest. A number two tenants' agents already share stays with the
-- other tenant's agents as they are (grandfathered), but those may not be activated.
insert into private.voice_numbers (phone, tenant_id, held_since)
select distinct on (a.phone) a.phone, a.tenant_id, a.created_at
from public.voice_agents a
order by a.phone, a.active desc, a.created_at, a.id;

-- Before an agent takes a number (insert, a new number, or activation): the number is
-- the tenant's, or it is claimed for the tenant now. The holder's row is read FOR SHARE,
-- so a release of the same number by the tenant's last agent (which locks it FOR UPDATE,
-- below) waits for this writer to commit and then sees its agent; a claim that finds the
-- row released in between claims again.
create function private.claim_voice_number() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_holder uuid;
begin
  if tg_op = 'UPDATE' and new.phone = old.phone and not (new.active and not old.active) then
    return new;
  end if;
  for i in 1..3 loop
    insert into private.voice_numbers (phone, tenant_id) values (new.phone, new.tenant_id)
    on conflict (phone) do nothing;
    select n.tenant_id into v_holder from private.voice_numbers n where n.phone = new.phone for share;
    exit when found;
  end loop;
  if v_holder is distinct from new.tenant_id then
    raise exception 'phone is already taken' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'already_exists', 'details', jsonb_build_object(
        'fields', jsonb_build_array(jsonb_build_object('field', 'phone', 'message', 'is already taken'))))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.claim_voice_number() from public, anon, authenticated;
create trigger claim_number before insert or update of phone, active on public.voice_agents
  for each row execute function private.claim_voice_number();

-- After the tenant's last agent on a number leaves it (deleted, or moved to another
-- number), the number is free again.
create function private.release_voice_number() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and new.phone = old.phone then
    return null;
  end if;
  perform 1 from private.voice_numbers n where n.phone = old.phone and n.tenant_id = old.tenant_id for update;
  if found and not exists (select 1 from public.voice_agents a where a.tenant_id = old.tenant_id and a.phone = old.phone) then
    delete from private.voice_numbers n where n.phone = old.phone and n.tenant_id = old.tenant_id;
  end if;
  return null;
end;
$$;
revoke all on function private.release_voice_number() from public, anon, authenticated;
create trigger release_number after delete or update of phone on public.voice_agents
  for each row execute function private.release_voice_number();

-- ------------------------------------------------------------------ the plan's voice feature

-- Redefined: as 20261202100000_voice_plan.sql, and an active agent's new number is a
-- claim on the router like an activation.
create or replace function private.require_voice_feature() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  case tg_table_name
    when 'voice_agents' then
      if new.active and (tg_op = 'INSERT' or not old.active or new.phone is distinct from old.phone) then
        perform private.assert_feature(new.tenant_id, 'voice');
      end if;
    when 'voice_calls' then
      perform private.assert_feature(new.tenant_id, 'voice');
    when 'voice_knowledge_bases', 'kb_documents' then
      perform private.assert_feature(new.tenant_id, 'knowledge_base');
  end case;
  return new;
end;
$$;
drop trigger require_feature on public.voice_agents;
create trigger require_feature before insert or update of active, phone on public.voice_agents
  for each row execute function private.require_voice_feature();
