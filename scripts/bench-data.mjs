// Data the request-path benchmarks share (tests/bench/request-path.bench.ts and the load
// stage, scripts/bench-load.mjs): 200 tenants × 50 members (user, agent and admin in
// turn) and 5 teams each, written as the superuser through a postgres.js connection.
export async function loadTenantsAndTeams(sql) {
  await sql`
    with t as (
      insert into public.tenants (name, slug)
      select 'Tenant ' || g, 'bench-' || g from generate_series(1, 200) g returning id
    ), u as (
      insert into public.users (email) select 'u' || g || '@bench.test' from generate_series(1, 10000) g returning id
    ), numbered_t as (select id, row_number() over () - 1 as n from t),
       numbered_u as (select id, row_number() over () - 1 as n from u)
    insert into public.memberships (tenant_id, user_id, role)
    select numbered_t.id, numbered_u.id, (array['user', 'agent', 'admin'])[1 + numbered_u.n % 3]
    from numbered_u join numbered_t on numbered_t.n = numbered_u.n % 200`;
  await sql`
    insert into public.teams (tenant_id, name, department)
    select t.id, 'Team ' || g, 'support' from public.tenants t, generate_series(1, 5) g where t.slug like 'bench-%'`;
}

/** The vocabulary of loadAcmeTickets: eight subjects (titles), four verbs (descriptions). */
export const TICKET_SUBJECTS = ['printer', 'VPN', 'invoice', 'login', 'laptop', 'email', 'phone', 'network'];
export const TICKET_VERBS = ['printing', 'connecting', 'billing', 'signing in'];

/**
 * `tickets` tickets for one tenant (the seed's acme by default), bulk-loaded as the
 * superuser with public.tickets' user triggers disabled (in the transaction that
 * re-enables them), numbered after the tenant's counter, statuses and their timestamps
 * set directly; the counter and the statistics are rebuilt after, and the search index
 * is dropped for the load and rebuilt once (much faster than maintaining it row by row).
 * The bulk rows have no timeline, audit or outbox rows. Ticket g (1 = newest, 30 s apart):
 *  - title: TICKET_SUBJECTS[g % 8] + ' issue ' + g — each subject in an eighth of them;
 *  - description: TICKET_VERBS[g % 4], plus, for one in seven, another subject mentioned
 *    once ("after the <subject> update") or the ticket's own subject twice, so relevance
 *    differs within a subject and the best-ranked tickets are a minority spread over time;
 *  - tags: 'vip' on one in ten, another subject on one in thirteen (weight C).
 * Requester `userId`; one in three assigned to `agentId`; all in team `teamId`.
 * @param {import('postgres').Sql} sql a superuser connection
 */
export async function loadAcmeTickets(sql, { tickets, tenantId, teamId, userId, agentId }) {
  const subjects = sql.array(TICKET_SUBJECTS);
  const verbs = sql.array(TICKET_VERBS);
  await sql.begin(async (tx) => {
    await tx`alter table public.tickets disable trigger user`;
    await tx`drop index if exists public.tickets_search_idx`;
    await tx`
      insert into public.tickets (tenant_id, number, title, description, status, priority, department, team_id,
                                  created_by, assigned_to, created_at, first_response_at, resolved_at, closed_at, tags)
      select ${tenantId}, c.last_number + g,
        (${subjects}::text[])[1 + g % 8] || ' issue ' || g,
        'Customer reports a problem with ' || (${verbs}::text[])[1 + g % 4]
          || case g % 7 when 0 then ' after the ' || (${subjects}::text[])[1 + (g / 7 + 3) % 8] || ' update'
                        when 3 then '; the ' || (${subjects}::text[])[1 + g % 8] || ' keeps failing, the '
                                    || (${subjects}::text[])[1 + g % 8] || ' again'
                        else '' end,
        (array['open', 'pending', 'escalated', 'resolved', 'closed'])[1 + g % 5],
        (array['low', 'medium', 'high', 'urgent'])[1 + g % 4],
        'support', ${teamId}, ${userId},
        case when g % 3 = 0 then ${agentId}::uuid end,
        now() - make_interval(secs => g * 30),
        case when g % 5 <> 0 then now() - make_interval(secs => g * 30 - 600) end,
        case when g % 5 >= 3 then now() - make_interval(secs => g * 30 - 3600) end,
        case when g % 5 = 4 then now() - make_interval(secs => g * 30 - 7200) end,
        case when g % 10 = 0 then array['vip']
             when g % 13 = 0 then array[lower((${subjects}::text[])[1 + (g / 13 + 3) % 8])]
             else '{}' end
      from generate_series(1, ${tickets}::int) g
      cross join (select coalesce((select last_number from private.ticket_counters where tenant_id = ${tenantId}), 0)
                  as last_number) c`;
    await tx`create index tickets_search_idx on public.tickets using gin (search)`;
    await tx`
      insert into private.ticket_counters (tenant_id, last_number)
      select ${tenantId}, coalesce(max(number), 0) from public.tickets where tenant_id = ${tenantId}
      on conflict (tenant_id) do update set last_number = excluded.last_number`;
    await tx`alter table public.tickets enable trigger user`;
    await tx`select private.rebuild_ticket_stats(${tenantId})`;
  });
  await sql`vacuum analyze public.tickets`;
}
