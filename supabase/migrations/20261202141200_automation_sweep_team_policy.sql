-- "Pending for N business hours" counts in the ticket's own SLA policy's hours — its
-- team's, else the tenant's (20261202141000_sla_policies_per_team.sql) — through the one
-- lookup, private.sla_policy_for. The tenant-wide read it replaces would also have found
-- two policies for a priority once a team has its own.

create or replace function private.run_automation_sweep(p_now timestamptz default now(), p_limit int default 500) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_rule public.automation_rules;
  v_due record;
  v_added int := 0;
begin
  for v_rule in
    select * from public.automation_rules r
    where r.active and r.after_minutes is not null and r.event in ('ticket.pending_for', 'ticket.no_customer_reply')
    order by r.tenant_id, r.position, r.id
  loop
    exit when v_added >= p_limit;
    for v_due in
      select w.ticket_id, w.since,
             md5(v_rule.id::text || ':' || w.ticket_id::text || ':' || w.since::text)::uuid as event_id
      from (
        select t.id as ticket_id, t.sla_paused_at as since
        from public.tickets t
        where v_rule.event = 'ticket.pending_for'
          and t.tenant_id = v_rule.tenant_id and t.status = 'pending' and t.deleted_at is null
          and t.sla_paused_at <= p_now - make_interval(mins => v_rule.after_minutes)
          and private.business_minutes_between(t.sla_paused_at, p_now,
                (private.sla_policy_for(t.tenant_id, t.team_id, t.priority)).business_hours) >= v_rule.after_minutes
        union all
        select t.id, m.created_at
        from public.tickets t
        cross join lateral (
          select x.author_id, x.created_at from public.ticket_messages x
          where x.tenant_id = t.tenant_id and x.ticket_id = t.id and x.type = 'message'
          order by x.created_at desc limit 1
        ) m
        where v_rule.event = 'ticket.no_customer_reply'
          and t.tenant_id = v_rule.tenant_id and t.status in ('open', 'pending', 'escalated') and t.deleted_at is null
          and m.author_id is distinct from t.created_by
          and m.created_at <= p_now - make_interval(mins => v_rule.after_minutes)
      ) w
      where not exists (
        select 1 from public.automation_runs x
        where x.tenant_id = v_rule.tenant_id and x.rule_id = v_rule.id
          and x.event_id = md5(v_rule.id::text || ':' || w.ticket_id::text || ':' || w.since::text)::uuid)
      order by w.since
      limit p_limit - v_added
    loop
      perform private.add_job('automation',
        jsonb_build_object('tenant_id', v_rule.tenant_id, 'ticket_id', v_due.ticket_id, 'event', v_rule.event,
                           'event_id', v_due.event_id, 'rule_id', v_rule.id, 'chain', '[]'::jsonb),
        'automation-timed:' || v_due.event_id, null, null, 'automation:' || v_due.ticket_id, 'preserve_run_at');
      v_added := v_added + 1;
    end loop;
  end loop;
  return v_added;
end;
$$;
grant execute on function private.run_automation_sweep(timestamptz, int) to service_role;
