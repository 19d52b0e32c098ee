-- Review of this stop's migrations (issue 14): what review found in 20261207142000,
-- 143000, 144000 and 146000 after they landed, changed here (a landed migration is never
-- edited), and message edits counted with the messages of 20261207148000.
--
-- * A parked agent takes no new call from the call events (142000), but a call people
--   log by hand (`manual:`, after the fact) still names the agent that took it: the
--   agent may have been parked since.
-- * A purged tenant's audit entries lose their row images rather than go (143000
--   deleted them): each entry stays, with its actor, action, table, key and time, so the
--   trail still says who did what and who purged it, as a customer's erasure leaves its
--   records' (20261204100000); `redacted_at` says when the images went. The tenants
--   row's own DELETE keeps its image (what was purged).
-- * A late answer of a call the provider ended failed is taken only when it says when
--   the call was answered (144000 took one without, as answered at the end, 0 seconds,
--   and the retry that names the time was then ignored).
-- * (146000: a customer follower's reply reopens a pending ticket; 20261206132000 had it
--   restart staff's reply clock only, the wait going on.)
-- * A customer's edits of their messages count with the messages they write
--   (`settings.customer_messages_per_day`, 20261207148000): one PostgREST update may
--   rewrite every message of theirs, each a `message.updated` event, a delivery per
--   endpoint and an audit entry, as often as they like.

-- Redefined (20261207142000_parked_agents_take_no_calls.sql): manual calls pass.
create or replace function private.voice_call_needs_active_agent() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_active boolean;
begin
  if new.agent_id is null or new.provider_call_id like 'manual:%' then
    return new;
  end if;
  select a.active into v_active from public.voice_agents a where a.tenant_id = new.tenant_id and a.id = new.agent_id;
  -- No such agent is the foreign key's to refuse.
  if found and not v_active then
    raise exception 'The agent is inactive; it takes no calls until it is activated' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'agent_inactive')::text;
  end if;
  return new;
end;
$$;

-- Redefined (20261207143000_purged_tenants_leave_no_trail.sql): the entries stay, their
-- row images go.
create or replace function private.tenant_purge_trail() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- By audit_logs_tenant_id_idx.
  update public.audit_logs l
  set old_data = null, new_data = null, image_bytes = 0, redacted_at = pg_catalog.now()
  where l.tenant_id = old.id and l.redacted_at is null
    and not (l.table_name = 'tenants' and l.action = 'DELETE');
  return null;
end;
$$;

-- Redefined (20261207144000_answers_after_the_end.sql): only an answer that says when;
-- the lock wait bound of 20261206034000 kept.
create or replace function private.voice_call_answered(p_tenant_id uuid, p_provider_call_id text, p_answered_at timestamptz)
returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
set lock_timeout = '30s'
as $$
#variable_conflict use_column
declare
  c public.voice_calls;
  v_at timestamptz;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select * into c from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id
  for no key update;
  if c.id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if c.status = 'ringing' then
    update public.voice_calls v
    set status = 'in_progress', answered_at = least(greatest(coalesce(p_answered_at, now()), v.started_at), now())
    where v.tenant_id = p_tenant_id and v.id = c.id;
    return query select true, c.id, 'in_progress'::text;
    return;
  end if;
  -- Ended provisionally by the sweep and never answered: the late answer is recorded (the
  -- call stays ended until the provider's end, which then counts from it), as late
  -- segments are; the provisional end moves to the answer if it was before it.
  if c.timed_out_at is not null and c.answered_at is null then
    v_at := least(greatest(coalesce(p_answered_at, now()), c.started_at), now());
    update public.voice_calls v set answered_at = v_at, ended_at = greatest(v.ended_at, v_at)
    where v.tenant_id = p_tenant_id and v.id = c.id;
    return query select true, c.id, c.status;
    return;
  end if;
  -- Ended failed by the provider before its answer arrived (the answer's delivery retried
  -- after the end's): the answer is recorded and the duration counted from it to the end.
  -- Not a call ended missed (never picked up), nor an answer without its time (now would
  -- be after the end: answered at the end, 0 s, and the retry that names the time ignored).
  if c.status = 'failed' and c.answered_at is null and p_answered_at is not null then
    v_at := least(greatest(p_answered_at, c.started_at), c.ended_at);
    update public.voice_calls v
    set answered_at = v_at,
        duration_seconds = least(greatest(0, floor(extract(epoch from v.ended_at - v_at))), 2147483647)::int
    where v.tenant_id = p_tenant_id and v.id = c.id;
    return query select true, c.id, c.status;
    return;
  end if;
  return query select false, c.id, c.status;
end;
$$;

-- As the insert's count (private.ticket_messages_customer_cap): a customer's own edit,
-- on either path, one per row changed.
create function private.ticket_messages_customer_edit_cap() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated' and new.content is distinct from old.content
     and private.role_in(new.tenant_id) = 'user' then
    perform private.check_customer_message(new.tenant_id);
  end if;
  return new;
end;
$$;
revoke all on function private.ticket_messages_customer_edit_cap() from public, anon;
create trigger ticket_messages_before_update_customer_cap before update of content on public.ticket_messages
  for each row execute function private.ticket_messages_customer_edit_cap();
