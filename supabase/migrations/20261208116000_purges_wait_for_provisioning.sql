-- A purge (a tenant row deleted outright) is refused while a partner service may hold
-- something at the partner (20261206065000); a service still pending that never made
-- anything does not hold it. The check read the services without waiting: a provisioning
-- job that had just taken a pending service (private.provisioning_context locks its row
-- and marks it provisioning, then calls the partner) was not seen, the cascade then waited
-- for that job's commit and deleted the row, and the job went on to make a Chatwoot,
-- Odoo, n8n or Botpress space that nobody tracks. The check now locks the tenant's
-- services first, so it waits for such a job and sees it provisioning (409).

-- Redefined (20261206065000_third_round_review.sql): the services locked before they are read.
create or replace function private.tenant_delete_after_services() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_left text[];
begin
  -- Waits for a job holding one (provisioning_context); the read below then sees its state.
  perform 1 from public.tenant_services s where s.tenant_id = old.id order by s.id for update;
  select array_agg(s.service order by s.service) into v_left
  from public.tenant_services s
  where s.tenant_id = old.id and s.state <> 'removed'
    and not (s.state = 'pending' and s.external_ids = '{}'::jsonb and s.credentials_encrypted is null);
  if v_left is not null then
    raise exception 'The tenant''s partner services are not removed yet (%): set the tenant deleted, and delete it once they are',
      array_to_string(v_left, ', ')
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'services_not_removed', 'details', jsonb_build_object('services', to_jsonb(v_left)));
  end if;
  return old;
end;
$$;
