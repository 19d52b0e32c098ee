-- An agent changing its number takes two numbers' locks: the new one (claim_number, FOR
-- SHARE) and then the one it leaves (lock_number_left, FOR UPDATE). Two agents of a
-- tenant trading numbers at once (A from N1 to N2, B from N2 to N1) each held its new
-- number and waited for the other's: a deadlock, one request answered 503 `retry`.
-- Now a change of number locks both numbers first (those its tenant holds), in the
-- numbers' order, so the second change waits for the first and both commit. The
-- triggers' own locks after it are then already held. Inserts, deletes and activations
-- take one number and are unchanged.
create function private.lock_voice_numbers_in_order() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- The tenant's own numbers only: one another tenant holds is only read by the claim
  -- (FOR SHARE, then 409), and an attempt on it must not hold up that tenant's changes.
  perform 1 from private.voice_numbers n
  where n.phone in (old.phone, new.phone) and n.tenant_id = new.tenant_id
  order by n.phone
  for update;
  return new;
end;
$$;
revoke all on function private.lock_voice_numbers_in_order() from public, anon, authenticated;
-- Named to fire before claim_number and lock_number_left (same-event triggers fire in
-- name order).
create trigger agent_numbers_locked_in_order before update of phone on public.voice_agents
  for each row when (new.phone is distinct from old.phone)
  execute function private.lock_voice_numbers_in_order();
