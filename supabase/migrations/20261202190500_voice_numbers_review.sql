-- Numbers held by tenants (20261202190000_voice_numbers_held.sql), after review.
--
-- * Taking a number nobody holds needs the plan's voice feature: a parked agent routes
--   nothing and needed no feature, so a starter tenant could hold any free number (a
--   competitor's published one) and keep it from the tenant that owns it. Numbers the
--   tenant already holds stay usable by its parked agents without it.
-- * A deleted tenant's number goes to the next tenant that claims it: deletion is soft
--   and nothing ever released its numbers. (Its agents keep the number as data; if it is
--   restored, another tenant holding the number means 409 on activation, as for any
--   tenant.) An active agent of a deleted tenant still blocks activation elsewhere (the
--   one-active-agent index), so a platform admin parks it first.
-- * The release locks the number BEFORE the agent row changes: an agent's delete (or
--   new number) took the agent row, then the usage counter, and only then the number
--   FOR UPDATE, while a claim of the same number holds it FOR SHARE and then waits on the
--   agent row through the unique index — a deadlock. Now every path takes the number
--   first, then the agent row's index entry, then the counter.

-- Redefined: as 20261202190000_voice_numbers_held.sql, with the plan and deleted holders.
create or replace function private.claim_voice_number() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_holder uuid;
  v_holder_deleted boolean;
begin
  if tg_op = 'UPDATE' and new.phone = old.phone and not (new.active and not old.active) then
    return new;
  end if;
  for i in 1..3 loop
    select n.tenant_id, t.status = 'deleted' into v_holder, v_holder_deleted
    from private.voice_numbers n join public.tenants t on t.id = n.tenant_id
    where n.phone = new.phone
    for share of n;
    if found and v_holder_deleted and v_holder is distinct from new.tenant_id then
      perform private.assert_feature(new.tenant_id, 'voice');
      update private.voice_numbers n set tenant_id = new.tenant_id, held_since = now()
      where n.phone = new.phone and n.tenant_id = v_holder;
      if found then
        return new;
      end if;
      continue;
    end if;
    if found then
      exit;
    end if;
    -- Free: claiming it is taking a number on the router.
    perform private.assert_feature(new.tenant_id, 'voice');
    insert into private.voice_numbers (phone, tenant_id) values (new.phone, new.tenant_id)
    on conflict (phone) do nothing;
    if found then
      return new;
    end if;
  end loop;
  if v_holder is distinct from new.tenant_id then
    raise exception 'phone is already taken' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'already_exists', 'details', jsonb_build_object(
        'fields', jsonb_build_array(jsonb_build_object('field', 'phone', 'message', 'is already taken'))))::text;
  end if;
  return new;
end;
$$;

-- The number an agent leaves, locked before the agent row changes (see above); the AFTER
-- trigger then frees it if no agent of the tenant uses it.
create function private.lock_voice_number_left() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' or new.phone is distinct from old.phone then
    perform 1 from private.voice_numbers n where n.phone = old.phone and n.tenant_id = old.tenant_id for update;
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end;
$$;
revoke all on function private.lock_voice_number_left() from public, anon, authenticated;
create trigger lock_number_left before delete or update of phone on public.voice_agents
  for each row execute function private.lock_voice_number_left();
