-- Two claims of a deleted tenant's number at once: one takes it, the other finds it taken
-- or its own (review of voice agents, issue 14).
--
-- claim_voice_number read the number's holder FOR SHARE, then, the holder being a deleted
-- tenant, updated that row: two claimants holding the share lock each waited for the
-- other's update, and Postgres ended one with a deadlock (a 503 retry where a 201 or a
-- 409 was owed). The take-over is now an update checking the holder in its own WHERE, with
-- no lock taken before it; a second claimant waits on the row, reads it again (another
-- tenant's, or its own) and goes on as for a held number.

-- Redefined (20261203234000_plan_checks_for_outsiders.sql): the take-over without a read
-- lock before it.
create or replace function private.claim_voice_number() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_holder uuid;
begin
  -- An outsider's insert is the policy's to refuse: claiming the number first answered
  -- a foreign-key error for a tenant that does not exist (and the policy's for one that
  -- does), and a number's holder for a taken one.
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  if tg_op = 'UPDATE' and new.phone = old.phone and not (new.active and not old.active) then
    return new;
  end if;
  for i in 1..3 loop
    -- A deleted tenant's number is taken over by an update that checks its holder itself,
    -- with no read lock before it: two claimants that each read it in share mode and then
    -- updated it waited on each other (Postgres ended one: a 503). The second now waits
    -- on the row and reads it again, another tenant's by then.
    if exists (select 1 from private.voice_numbers n join public.tenants t on t.id = n.tenant_id
               where n.phone = new.phone and t.status = 'deleted' and n.tenant_id <> new.tenant_id) then
      perform private.assert_feature(new.tenant_id, 'voice');
      update private.voice_numbers n set tenant_id = new.tenant_id, held_since = now()
      from public.tenants t
      where n.phone = new.phone and t.id = n.tenant_id and t.status = 'deleted' and n.tenant_id <> new.tenant_id;
      if found then
        return new;
      end if;
    end if;
    select n.tenant_id into v_holder from private.voice_numbers n where n.phone = new.phone for share of n;
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

