-- A parked (inactive) agent takes no new call (review, issue 14).
--
-- The plan limits a tenant's active agents (20261202100000): a parked agent costs nothing
-- because it routes no call. That held on the platform's own path only — /route refuses a
-- parked agent's number (agent_inactive) — while the call events took any agent of the
-- tenant: a tenant's own telephony, with a key holding calls:write, started calls,
-- transcripts and recordings on as many parked agents as it made, past its plan. A new
-- call now needs an active agent (409 agent_inactive, as /route's reason says); events
-- for calls already started go on, and so does a call with no agent. (A call /route
-- answered just before an admin parked its agent is refused too: the agent was parked.)

-- Definer: whoever starts the call (the provider, a key under RLS), the agent's state is read.
create function private.voice_call_needs_active_agent() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_active boolean;
begin
  if new.agent_id is null then
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
revoke all on function private.voice_call_needs_active_agent() from public, anon, authenticated;
create trigger voice_call_needs_active_agent before insert on public.voice_calls
  for each row execute function private.voice_call_needs_active_agent();
