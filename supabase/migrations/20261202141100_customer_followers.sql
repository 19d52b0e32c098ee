-- Followers among the customers (issue 16 §5: "agents and, where the tenant allows,
-- requester's colleagues"). With `settings.customer_followers = true` on the tenant
-- (admins set it with PATCH /tenants/{id}), a ticket's requester adds other customers of
-- the tenant as followers. Such a follower sees the ticket and its public messages
-- (never internal notes) through the one select policy — the followers clause moves out
-- of the staff branch; private.my_followed_ticket_keys decides in which tenants a
-- follow counts —, is notified of public changes only, and loses all of it when removed
-- or when the tenant turns the setting off (the rows stay, unused, until then). The
-- update policy keeps the clause inside its staff branch: a customer following a ticket
-- gets no more than its requester has (who may not update tickets directly either).

-- ------------------------------------------------------------------ where customers may follow

-- The caller's tenants (as a member of any role; writable ones only with p_writable)
-- whose settings let customers follow tickets: the caller's own list, as
-- private.tenant_ids, so it says nothing about other tenants.
create function private.customer_follower_tenant_ids(p_writable boolean default false) returns uuid[]
language sql stable security definer
set search_path = ''
as $$
  select coalesce(array_agg(t.id), '{}') from public.tenants t
  where t.id = any (private.tenant_ids('user', p_writable)) and t.settings -> 'customer_followers' = 'true'::jsonb;
$$;
revoke all on function private.customer_follower_tenant_ids(boolean) from public, anon;
grant execute on function private.customer_follower_tenant_ids(boolean) to authenticated, service_role;

-- As before (20261202050300_followers_notifications.sql): the tickets the caller follows,
-- as tenant-qualified keys, in the tenants where they are staff — and now also where
-- they are a customer and the tenant lets customers follow.
create or replace function private.my_followed_ticket_keys() returns text[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_keys text[];
begin
  select coalesce(array_agg(f.tenant_id::text || '/' || f.ticket_id::text), '{}') into v_keys
  from public.ticket_followers f
  where f.user_id = private.current_user_id()
    and (f.tenant_id = any (private.tenant_ids('agent')) or f.tenant_id = any (private.customer_follower_tenant_ids()));
  return v_keys;
end;
$$;
revoke all on function private.my_followed_ticket_keys() from public, anon;
grant execute on function private.my_followed_ticket_keys() to authenticated, service_role;

-- ------------------------------------------------------------------ the one select policy

-- As before (20261202050300_followers_notifications.sql), with the followers clause —
-- the same clause — one level up: beside the requester's and the staff's, for whoever
-- follows the ticket where the follow counts (staff; customers where allowed).
drop policy tickets_select on public.tickets;
create policy tickets_select on public.tickets for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and (
      (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) and created_by = (select private.current_user_id()))
      or (tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) and (
        assigned_to = (select private.current_user_id()) or created_by = (select private.current_user_id())
        or (team_id = any ((select array_agg(split_part(k, '/', 2)::uuid) from unnest(private.my_team_keys()) k)::uuid[])
            and (tenant_id::text || '/' || team_id::text) = any ((select private.my_team_keys())::text[]))))
      or (id = any ((select array_agg(split_part(k, '/', 2)::uuid) from unnest(private.my_followed_ticket_keys()) k)::uuid[])
          and (tenant_id::text || '/' || id::text) = any ((select private.my_followed_ticket_keys())::text[]))
    ))
  );

-- ------------------------------------------------------------------ who may follow

-- As before (20261202050300_followers_notifications.sql), plus: a customer of the tenant
-- may follow, added by hand (by the requester, or by staff who see the ticket), where the
-- tenant allows it; and a customer adds only customers (a requester does not hand a
-- ticket to staff of their choosing). A customer where the tenant does not allow it is
-- refused as before (409 not_staff); someone who is no member of the tenant is the
-- foreign key's refusal (422 on user_id); a customer adding where customers may not
-- follow, the policies' (403).
create or replace function private.ticket_followers_check() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text;
  v_adder_role text;
begin
  -- Someone who may not write in the tenant learns nothing about its people from which
  -- refusal comes back: this trigger runs before the policies, so it refuses as they would.
  if new.reason = 'manual' and private.current_user_id() is not null and not private.is_platform_admin()
     and not (new.tenant_id = any (private.tenant_ids('user', true))) then
    raise exception 'new row violates row-level security policy for table "ticket_followers"' using errcode = '42501';
  end if;
  select m.role into v_role from public.memberships m where m.tenant_id = new.tenant_id and m.user_id = new.user_id;
  select m.role into v_adder_role from public.memberships m
  where m.tenant_id = new.tenant_id and m.user_id = private.current_user_id();
  -- A customer where customers may not follow: refused as the policies would (this
  -- trigger runs before them), whoever they name. Only for follows added by hand: the
  -- assignment and mention triggers add staff as definer, whoever's change set them off
  -- (a customer's ticket routed and auto-assigned makes its agent a follower).
  if new.reason = 'manual' and v_adder_role = 'user' and not private.is_platform_admin() and not exists (
       select 1 from public.tenants t where t.id = new.tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb) then
    raise exception 'Customers add followers only where the tenant allows it' using errcode = '42501';
  end if;
  if v_role is null then
    -- Nobody of this tenant (another tenant's person, an unknown id): as its foreign key says.
    raise exception 'the follower must be a member of this tenant'
      using errcode = '23503', constraint = 'ticket_followers_tenant_id_user_id_fkey';
  elsif v_role in ('agent', 'admin') then
    if new.reason = 'manual' and v_adder_role = 'user' and not private.is_platform_admin() then
      raise exception 'A customer adds only other customers as followers' using errcode = 'PT409',
        detail = jsonb_build_object('code', 'not_customer', 'details', jsonb_build_object('user_id', new.user_id));
    end if;
  elsif new.reason <> 'manual' or not exists (
               select 1 from public.tenants t where t.id = new.tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb) then
    raise exception 'Only staff of the tenant can follow a ticket (and its customers where the tenant allows it)'
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_staff', 'details', jsonb_build_object('user_id', new.user_id));
  end if;
  if new.added_by is null then
    new.added_by := private.current_user_id();
  end if;
  return new;
end;
$$;
revoke all on function private.ticket_followers_check() from public, anon, authenticated;

-- The requester (where customers may follow) adds followers to their own ticket; the
-- trigger above keeps them to customers.
drop policy ticket_followers_insert on public.ticket_followers;
create policy ticket_followers_insert on public.ticket_followers for insert to authenticated
  with check (
    ((tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()))
     and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id))
    or (tenant_id = any ((select private.customer_follower_tenant_ids(true))::uuid[])
        and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id
                    and t.created_by = (select private.current_user_id())))
  );
-- Customers (where they may follow) see their own follow and those they added — not
-- who else watches: staff followers stay internal.
drop policy ticket_followers_select on public.ticket_followers;
create policy ticket_followers_select on public.ticket_followers for select to authenticated
  using (
    ((tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) or (select private.is_platform_admin()))
     or (tenant_id = any ((select private.customer_follower_tenant_ids())::uuid[])
         and (user_id = (select private.current_user_id()) or added_by = (select private.current_user_id()))))
    and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id)
  );
-- As before, plus: a customer removes the followers they added.
drop policy ticket_followers_delete on public.ticket_followers;
create policy ticket_followers_delete on public.ticket_followers for delete to authenticated
  using (
    (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
    or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[])
        and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id))
    or (added_by = (select private.current_user_id())
        and tenant_id = any ((select private.customer_follower_tenant_ids(true))::uuid[])
        and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id))
  );

-- ------------------------------------------------------------------ notifications

-- As before (20261202050300_followers_notifications.sql): one notification per follower
-- but the actor — customers only for public changes (no internal notes) and only while
-- the tenant lets customers follow.
create or replace function private.notify_followers(p_tenant_id uuid, p_ticket_id uuid, p_type text, p_actor uuid, p_data jsonb)
returns void
language sql volatile security definer
set search_path = ''
as $$
  insert into public.notifications (tenant_id, user_id, ticket_id, type, actor_user_id, data)
  select f.tenant_id, f.user_id, f.ticket_id, p_type, p_actor, p_data
  from public.ticket_followers f
  join public.memberships m on m.tenant_id = f.tenant_id and m.user_id = f.user_id
  where f.tenant_id = p_tenant_id and f.ticket_id = p_ticket_id and f.user_id is distinct from p_actor
    and (m.role in ('agent', 'admin')
         or (p_type <> 'note.created'
             and exists (select 1 from public.tenants t where t.id = p_tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb)));
$$;
revoke all on function private.notify_followers(uuid, uuid, text, uuid, jsonb) from public, anon, authenticated;
