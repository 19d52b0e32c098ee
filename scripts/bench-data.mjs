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
