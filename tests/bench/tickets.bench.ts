// Tickets at scale: one tenant with BENCH_TICKETS tickets (1,000,000 by default; bulk
// loaded with triggers off, statistics rebuilt after) among 50 tenants. Each read is
// measured through asUser (RLS, as the function runs it) against the same query as
// raw SQL in the same run, plus the statistics endpoint's maintained counters against
// the exact aggregate they replace, and HTTP list/create through the Deno server.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { apiKey } from '../../scripts/tokens.mjs';
import { asUser, closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

const N = Number(process.env.BENCH_TICKETS ?? 1_000_000);
const acme = tenants.acme.id;
let db: TestDatabase;
let auth: AuthFixture;
let server: FunctionsServer;
let adminToken: string;
let userToken: string;
const admin = supabaseClaims(users.acmeAdmin, acme);

beforeAll(async () => {
  db = await freshDatabase('bench_tickets');
  const t0 = Date.now();
  await db.sql`alter table public.tickets disable trigger user`;
  await db.sql`drop index public.tickets_search_idx`;
  await db.sql`
    insert into public.tenants (name, slug) select 'Bench ' || g, 'bench-t-' || g from generate_series(1, 49) g`;
  await db.sql`
    insert into public.tickets (tenant_id, number, title, description, status, priority, department, team_id,
                                created_by, assigned_to, created_at, first_response_at, resolved_at, tags)
    select ${acme}, g,
      (array['Printer', 'VPN', 'Invoice', 'Login', 'Laptop', 'Email', 'Phone', 'Network'])[1 + g % 8] || ' issue number ' || g,
      'Customer reports a problem with ' || (array['printing', 'connecting', 'billing', 'signing in'])[1 + g % 4],
      (array['open', 'pending', 'escalated', 'resolved', 'closed'])[1 + g % 5],
      (array['low', 'medium', 'high', 'urgent'])[1 + g % 4],
      'support', ${teams.acme}, ${users.acmeUser.id},
      case when g % 3 = 0 then ${users.acmeAgent.id}::uuid end,
      now() - make_interval(secs => g * 30),
      case when g % 2 = 0 then now() - make_interval(secs => g * 30) + make_interval(secs => 60 + g % 7200) end,
      case when g % 5 >= 3 then now() - make_interval(secs => g * 30) + make_interval(secs => 3600 + g % 86400) end,
      case when g % 10 = 0 then array['vip'] else '{}' end
    from generate_series(1, ${N}) g`;
  await db.sql`create index tickets_search_idx on public.tickets using gin (search)`;
  await db.sql`insert into private.ticket_counters (tenant_id, last_number) values (${acme}, ${N})`;
  await db.sql`alter table public.tickets enable trigger user`;
  await db.sql`select private.rebuild_ticket_stats(${acme})`;
  await db.sql`vacuum analyze public.tickets`;
  console.log(`loaded ${N} tickets in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  auth = await configureAuth(db.url);
  server = await startFunctionsServer({ SUPABASE_ANON_KEY: await apiKey('anon', TEST_JWT_SECRET) });
  adminToken = await supabaseToken(users.acmeAdmin, { tenantId: acme, exp: '2h' });
  userToken = await supabaseToken(users.acmeUser, { tenantId: acme, exp: '2h' });
  // The customer files thousands of tickets in the run: above any real day's allowance.
  await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 1000000}' where id = ${acme}`;
}, 900_000);

afterAll(async () => {
  await server?.stop();
  await closeDb();
  await auth?.close();
  await db?.close();
});

const opts = { time: 2000, warmupTime: 300 };
const COLS = 'id, number, title, status, priority, assigned_to, created_at';

describe(`statistics over ${N} tickets`, () => {
  bench('exact aggregate, raw SQL (counts + two medians) — baseline', async () => {
    await db.sql`
      select status, priority, count(*) from public.tickets where tenant_id = ${acme} and deleted_at is null group by 1, 2`;
    await db.sql`
      select percentile_cont(0.5) within group (order by first_response_at - created_at),
             percentile_cont(0.5) within group (order by resolved_at - created_at)
      from public.tickets where tenant_id = ${acme} and deleted_at is null`;
  }, { time: 4000, warmupTime: 0, iterations: 3 });

  bench('maintained counters + histograms: private.ticket_stats via asUser', async () => {
    await asUser(admin, (tx) => tx`select private.ticket_stats(${acme})`);
  }, opts);
});

describe(`list and search over ${N} tickets`, () => {
  bench('newest 50, raw SQL — baseline', async () => {
    await db.sql`select ${db.sql.unsafe(COLS)} from public.tickets where tenant_id = ${acme} and deleted_at is null order by created_at desc, id desc limit 51`;
  }, opts);

  bench('newest 50, admin via asUser (RLS)', async () => {
    await asUser(admin, (tx) => tx`select ${tx.unsafe(COLS)} from public.tickets where tenant_id = ${acme} and deleted_at is null order by created_at desc, id desc limit 51`);
  }, opts);

  bench('customer: their newest 50, via asUser (RLS)', async () => {
    await asUser(supabaseClaims(users.acmeUser, acme), (tx) => tx`select ${tx.unsafe(COLS)} from public.tickets where tenant_id = ${acme} and deleted_at is null order by created_at desc, id desc limit 51`);
  }, opts);

  bench('open + urgent, newest 50, admin via asUser', async () => {
    await asUser(admin, (tx) => tx`select ${tx.unsafe(COLS)} from public.tickets where tenant_id = ${acme} and deleted_at is null and status = any(${['open']}) and priority = any(${['urgent']}) order by created_at desc, id desc limit 51`);
  }, opts);

  bench('full-text "vpn connecting", by relevance, top 50, admin via asUser', async () => {
    await asUser(admin, (tx) => tx`
      select ${tx.unsafe(COLS)} from public.tickets
      where tenant_id = ${acme} and deleted_at is null and search @@ websearch_to_tsquery('english', 'vpn connecting')
      order by ts_rank(search, websearch_to_tsquery('english', 'vpn connecting')) desc, id desc limit 51`);
  }, opts);

  bench('HTTP GET /functions/v1/tickets?limit=50 (admin)', async () => {
    const res = await fetch(`${server.url}/functions/v1/tickets?limit=50`, { headers: { authorization: `Bearer ${adminToken}` } });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    await res.arrayBuffer();
  }, opts);

  bench('HTTP GET /functions/v1/tickets/stats (admin)', async () => {
    const res = await fetch(`${server.url}/functions/v1/tickets/stats`, { headers: { authorization: `Bearer ${adminToken}` } });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    await res.arrayBuffer();
  }, opts);
});

describe('creating tickets', () => {
  bench('raw INSERT, triggers on (numbering, SLA, timeline, audit, stats) — baseline', async () => {
    await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${acme}, 'Raw bench ticket', ${users.acmeUser.id})`;
  }, opts);

  bench('HTTP POST /functions/v1/tickets (customer)', async () => {
    const res = await fetch(`${server.url}/functions/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Bench ticket over HTTP' }),
    });
    if (res.status !== 201) throw new Error(`status ${res.status}`);
    await res.arrayBuffer();
  }, opts);
});
