-- private.ticket_search_candidates (20261202010000) answers a caller outside the tenant
-- with no rows, as before, but now at once: it used to walk and search the tenant all
-- the same (the policy filtering every row out), so its time told an outsider roughly
-- how many of another tenant's tickets match a word. Inside a tenant the route asks it
-- for staff only (customers search their own tickets exactly, under RLS), so a
-- customer's search time no longer depends on other customers' tickets either.

create or replace function private.ticket_search_candidates(
  p_tenant_id uuid,
  p_query text,
  p_include_deleted boolean default false,
  p_limit integer default 1000
) returns table (id uuid, created_at timestamptz)
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_match text;
  v_tickets bigint;
  v_window bigint := 16384;
  v_found bigint;
  v_ids uuid[];
  v_ats timestamptz[];
begin
  if p_tenant_id is null or p_query is null or p_limit is null or p_limit not between 1 and 1000 then
    raise exception 'ticket_search_candidates needs a tenant, a query and a limit of 1 to 1000'
      using errcode = '22023';
  end if;
  v_match := format('search @@ pg_catalog.websearch_to_tsquery(''english'', $2) %s and (%s)',
    case when coalesce(p_include_deleted, false) then '' else 'and deleted_at is null' end,
    private.tickets_select_predicate());
  -- Outsiders stop here: the policy would show them nothing, but the walk and the
  -- search index would still take longer the more of the tenant's tickets match.
  if not (p_tenant_id = any (private.tenant_ids('user')) or private.is_platform_admin()) then
    return;
  end if;
  -- The tenant's ticket count, at most (numbers are never reused).
  select c.last_number into v_tickets from private.ticket_counters c where c.tenant_id = p_tenant_id;
  if v_tickets is null then
    return;
  end if;
  for attempt in 1..2 loop
    exit when v_window >= v_tickets;
    execute format(
      'select coalesce(array_agg(x.id order by x.created_at desc, x.id desc), ''{}''),
              coalesce(array_agg(x.created_at order by x.created_at desc, x.id desc), ''{}'')
       from (select w.id, w.created_at
             from (select * from public.tickets where tenant_id = $1 order by created_at desc, id desc limit $4) w
             where %s order by w.created_at desc, w.id desc limit $3) x', v_match)
      into v_ids, v_ats using p_tenant_id, p_query, p_limit, v_window;
    v_found := cardinality(v_ids);
    if v_found >= p_limit then
      return query select u.id, u.created_at from unnest(v_ids, v_ats) u (id, created_at);
      return;
    end if;
    -- Matches expected in the whole tenant from the share found; the window that would
    -- hold p_limit of them, with a margin. Walk it only if it is smaller than the matches.
    exit when v_found = 0 or attempt = 2;
    exit when (p_limit * 1.5 * v_window / v_found) / 20 > (v_found::numeric * v_tickets / v_window);
    v_window := ceil(p_limit * 1.5 * v_window / v_found);
  end loop;
  return query execute format(
    'with m as materialized (select id, created_at from public.tickets where tenant_id = $1 and %s)
     select m.id, m.created_at from m order by m.created_at desc, m.id desc limit $3', v_match)
    using p_tenant_id, p_query, p_limit;
end;
$$;
revoke all on function private.ticket_search_candidates(uuid, text, boolean, integer) from public, anon;
grant execute on function private.ticket_search_candidates(uuid, text, boolean, integer) to authenticated;
