-- Relevance search at scale (issue 12): rank a bounded candidate set instead of every
-- match. Ranking all the matches of a common word (125,000 of a 1,000,000-ticket
-- tenant) reads every one of them and computes ts_rank for each: 300 to 420 ms. The
-- first page of GET /tickets?q=… instead ranks the caller's newest 1,000 matching
-- tickets (private.ticket_search_candidates below), which a walk of the tenant's
-- tickets newest-first finds after reading about 1,000 / (share of tickets that match)
-- rows. Within those candidates the order is exact (ts_rank, then newest first); a
-- better-ranked ticket older than the newest 1,000 matches is missed on the first page.
-- Pages past the candidates fall back to the exact order over the older matches
-- (functions/tickets/routes/tickets.ts).

-- The tickets select policy (or policies) for `authenticated`, as one SQL predicate over
-- the unqualified columns of public.tickets: the permissive ones or'ed, the restrictive
-- ones and'ed, 'false' when none is permissive. Read from the catalog (deparsed), as
-- private.can_see_ticket does, so a definer path that must apply the policy cannot
-- drift from it. Its helpers read the request's claims, so the predicate answers for
-- the caller wherever it runs. Not for API roles: it only describes the policy.
create function private.tickets_select_predicate() returns text
language sql stable
set search_path = ''
as $$
  select case when count(*) filter (where p.polpermissive) = 0 then 'false'
    else '(' || string_agg('(' || pg_catalog.pg_get_expr(p.polqual, p.polrelid) || ')', ' or ')
                  filter (where p.polpermissive) || ')'
         || coalesce(' and ' || string_agg('(' || pg_catalog.pg_get_expr(p.polqual, p.polrelid) || ')', ' and ')
                  filter (where not p.polpermissive), '')
    end
  from pg_catalog.pg_policy p
  where p.polrelid = 'public.tickets'::regclass and p.polcmd in ('r', '*') and p.polqual is not null
    and p.polroles && array['authenticated'::regrole::oid, 0::oid]
$$;
revoke all on function private.tickets_select_predicate() from public, anon, authenticated;

-- The caller's newest (created_at desc, id desc) p_limit (1 to 1,000) tickets of the
-- tenant that match the web-search query p_query, deleted ones only with
-- p_include_deleted, and only those the tickets select policy shows the caller: the
-- policy itself, read by private.tickets_select_predicate, is the filter. Security
-- definer because under RLS the planner may not use the non-leakproof @@ of the search
-- ahead of the policy, so a search reads the whole tenant; the caller then reads the
-- candidates under RLS again (functions/tickets/routes/tickets.ts), so this narrows and
-- never widens what they see. Another tenant's id, or one the caller is not in, gives
-- no rows.
--
-- How: a word in one ticket of eight is found fastest by walking the tenant's newest
-- tickets (tickets_tenant_created_idx) until enough match, about 8,000 rows for 1,000;
-- a rare one, or one the caller rarely sees, fastest through the search index (GIN),
-- sorting what matches. Which one is which is not known before reading, and the
-- planner's guess from word frequencies fails on correlated words (a walk for two
-- words that never meet reads the whole tenant). So: walk a bounded window of the
-- newest tickets; if it did not find enough, walk a window as large as the share found
-- says is needed, when that reads fewer table pages than the index path would: the
-- walk reads the table in creation order, about 20 tickets a page, the index path a
-- page per match, spread over the table (on a loaded 2-core machine: 8,000 rows walked
-- in about 10 ms, 25,000 matches read through the index in about 2 s from a cold
-- cache); else, and whenever a window still falls short, take every match through the
-- search index.
create function private.ticket_search_candidates(
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
