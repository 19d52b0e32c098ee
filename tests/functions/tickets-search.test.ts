// Relevance search (GET /tickets?q=…) as it ranks a bounded candidate set for staff
// (issue 12; customers get the exact order): the caller's newest SEARCH_CANDIDATES
// matches, found by the definer function private.ticket_search_candidates, ranked
// under RLS. What each caller gets is exactly what the tickets select policy shows them
// (another tenant's and another customer's tickets never appear, whatever the attacker
// sends); on data below the bound the order is the exact one (ts_rank, newest first,
// id); past the bound the pages go on with the older matches in the exact order, never
// repeating a ticket; bad input is a 4xx in the common error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { SEARCH_CANDIDATES } from '../../functions/tickets/routes/tickets.ts';
import { asUser, closeDb } from '../../shared/db.ts';
import { encodeCursor } from '../../shared/schemas/common.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
// A second acme customer and a second acme agent (on no team).
const otherUser = { id: '00000000-0000-4000-8000-0000000000b1', email: 'other-customer@acme.test' };
const agent2 = { id: '00000000-0000-4000-8000-0000000000b2', email: 'agent2@acme.test' };
type Seeded = { id: string; email: string };
const claimsOf: Record<string, { user: Seeded; tenant: string }> = {
  admin: { user: users.acmeAdmin, tenant: acme },
  agent: { user: users.acmeAgent, tenant: acme },
  agent2: { user: agent2, tenant: acme },
  user: { user: users.acmeUser, tenant: acme },
  otherUser: { user: otherUser, tenant: acme },
  globexAgent: { user: users.globexAgent, tenant: globex },
  globexUser: { user: users.globexUser, tenant: globex },
};

/** Bulk tickets as the owner (triggers off, numbered after the counter): `n` of them in
 *  `tenant`, title, description and tags from the SQL `rows` of g, g = 1 the newest, a
 *  minute apart (and `olderBy` minutes older than now). */
async function bulk(
  tenant: string,
  n: number,
  rows: string,
  extra: { team?: string | null; by: string; assigned?: string; olderBy?: number },
) {
  await db.sql.begin(async (tx) => {
    await tx`alter table public.tickets disable trigger user`;
    await tx.unsafe(
      `insert into public.tickets (tenant_id, number, title, description, tags, team_id, created_by, assigned_to, created_at)
       select $1, c.last_number + ${n} - g + 1, ${rows}, $2::uuid, $3::uuid, $4::uuid,
              now() - make_interval(mins => g + ${extra.olderBy ?? 0})
       from generate_series(1, ${n}) g
       cross join (select coalesce((select last_number from private.ticket_counters where tenant_id = $1), 0) as last_number) c`,
      [tenant, extra.team ?? null, extra.by, extra.assigned ?? null],
    );
    await tx`
      insert into private.ticket_counters (tenant_id, last_number)
      select ${tenant}, coalesce(max(number), 0) from public.tickets where tenant_id = ${tenant}
      on conflict (tenant_id) do update set last_number = excluded.last_number`;
    await tx`alter table public.tickets enable trigger user`;
  });
}

beforeAll(async () => {
  db = await freshDatabase('fn_tickets_search');
  auth = await configureAuth(db.url);
  for (const u of [otherUser, agent2]) {
    await db.sql`insert into public.users (id, email) values (${u.id}, ${u.email})`;
    await db
      .sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${u.id}, ${u.id})`;
  }
  await db
    .sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${otherUser.id}, 'user'), (${acme}, ${agent2.id}, 'agent')`;
  // Small data for visibility and order: varied relevance for "kerberos" (title, body,
  // tags, repeated), across two customers, teams and tenants.
  const text = `(array['Kerberos kerberos login', 'Kerberos renewal', 'Login trouble', 'Printer jam'])[1 + g % 4] || ' ' || g,
       (array['kerberos again and kerberos', 'nothing else', 'probably kerberos related', 'paper'])[1 + (g / 4) % 4],
       case when g % 5 = 0 then array['kerberos'] else '{}' end`;
  await bulk(acme, 40, text, { team: teams.acme, by: users.acmeUser.id });
  await bulk(acme, 20, text, { team: null, by: otherUser.id });
  await bulk(acme, 10, text, { team: null, by: otherUser.id, assigned: agent2.id });
  await bulk(globex, 30, text, { team: teams.globex, by: users.globexUser.id });
  // A deleted one, for admins only.
  await db.sql`update public.tickets set deleted_at = now() where tenant_id = ${acme} and number = 1`;
  await db.sql`analyze public.tickets`;
  for (const [name, c] of Object.entries(claimsOf)) tok[name] = await supabaseToken(c.user, { tenantId: c.tenant });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

/** The exact relevance order of what the caller's select policy shows them (RLS). */
async function exact(who: string, q: string, opts: { includeDeleted?: boolean } = {}): Promise<string[]> {
  const c = claimsOf[who];
  const rows = await asUser(supabaseClaims(c.user as never, c.tenant), (tx) =>
    tx<{ id: string }>`
      select id from public.tickets
      where tenant_id = ${c.tenant} and search @@ websearch_to_tsquery('english', ${q})
        and (${opts.includeDeleted ?? false} or deleted_at is null)
      order by ts_rank(search, websearch_to_tsquery('english', ${q})) desc, created_at desc, id desc`);
  return rows.map((r) => r.id);
}

/** Every page of a search, in order; fails on a repeated ticket. */
async function allPages(who: string, query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const r = await call(app, 'GET', `/tickets?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { token: tok[who] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    ids.push(...r.body.items.map((t: { id: string }) => t.id));
    cursor = r.body.next;
    pages++;
    expect(pages).toBeLessThan(200);
  } while (cursor);
  expect(new Set(ids).size, 'a ticket came twice').toBe(ids.length);
  return { ids, pages };
}

describe('what a search shows', () => {
  for (const who of Object.keys(claimsOf)) {
    it(`${who}: exactly the tickets their select policy shows, in the exact order`, async () => {
      const expected = await exact(who, 'kerberos');
      const { ids } = await allPages(who, 'q=kerberos', 7);
      expect(ids).toEqual(expected);
      const first = await call(app, 'GET', '/tickets?q=kerberos&limit=100', { token: tok[who] });
      expect(first.body.items.map((t: { id: string }) => t.id)).toEqual(expected);
    });
  }

  it("never another tenant's or another customer's tickets", async () => {
    const tenantOf = new Map((await db.sql<{ id: string; tenant_id: string; created_by: string }[]>`
      select id, tenant_id, created_by from public.tickets`).map((t) => [t.id, t]));
    const seen = async (who: string, q = 'kerberos') =>
      (await allPages(who, `q=${encodeURIComponent(q)}`, 100)).ids.map((id) => tenantOf.get(id)!);
    for (const t of await seen('user')) expect([t.tenant_id, t.created_by]).toEqual([acme, users.acmeUser.id]);
    for (const t of await seen('otherUser')) expect([t.tenant_id, t.created_by]).toEqual([acme, otherUser.id]);
    for (const t of await seen('globexUser')) expect([t.tenant_id, t.created_by]).toEqual([globex, users.globexUser.id]);
    for (const t of await seen('globexAgent')) expect(t.tenant_id).toBe(globex);
    // agent2 is on no team: only what is assigned to them.
    expect((await seen('agent2')).length).toBeGreaterThan(0);
    for (const t of await seen('agent2', 'kerberos or printer or login')) expect(t.created_by).toBe(otherUser.id);
    expect((await seen('user')).length).toBeGreaterThan(0);
    expect((await seen('otherUser')).length).toBeGreaterThan(0);
    expect((await seen('globexUser')).length).toBeGreaterThan(0);
    expect((await seen('globexAgent')).length).toBeGreaterThan(0);
    expect((await seen('agent2', 'kerberos or printer or login')).length).toBeGreaterThan(0);
  });

  it('an attacker gets nothing more: foreign tenant in the token, forged cursors, the definer function directly', async () => {
    // A token naming a tenant the caller is not in.
    const foreign = await supabaseToken(users.globexAgent, { tenantId: acme });
    const r = await call(app, 'GET', '/tickets?q=kerberos', { token: foreign });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    errorCode(r);
    // A cursor pointing the exact phase at anything: still only what RLS shows.
    const ever = `${new Date(Date.now() + 86_400_000).toISOString().slice(0, 19)}.000000Z`;
    for (const cursor of [encodeCursor(['x', '', '', '', ever, '00000000-0000-4000-8000-000000000000'])]) {
      const page = await call(app, 'GET', `/tickets?q=kerberos&limit=100&cursor=${cursor}`, { token: tok.otherUser });
      expect(page.status).toBe(200);
      expect(page.body.items.map((t: { id: string }) => t.id)).toEqual(await exact('otherUser', 'kerberos'));
    }
    // The definer function, called as the customer for the other tenant or with deleted
    // ones asked for: the policy still decides (an outsider gets nothing at once).
    const direct = await asUser(supabaseClaims(users.acmeUser, acme), async (tx) => ({
      globex: (await tx`select id from private.ticket_search_candidates(${globex}, 'kerberos', true, 1000)`).length,
      acme: (await tx<{ id: string }>`select id from private.ticket_search_candidates(${acme}, 'kerberos', true, 1000)`)
        .map((x) => x.id).sort(),
    }));
    expect(direct.globex).toBe(0);
    expect(direct.acme).toEqual((await exact('user', 'kerberos')).sort());
    // API roles cannot run its predicate helper, nor anon the function.
    const helper = await asUser(supabaseClaims(users.acmeUser, acme), (tx) => tx`select private.tickets_select_predicate()`)
      .then(() => 'ran', (e) => e.code);
    expect(helper).toBe('42501');
  });

  it('admins find deleted tickets only with include_deleted', async () => {
    const [deleted] = await db.sql<{ id: string }[]>`select id from public.tickets where tenant_id = ${acme} and number = 1`;
    const without = await allPages('admin', 'q=kerberos', 100);
    const withDeleted = await allPages('admin', 'q=kerberos&include_deleted=true', 100);
    expect(withDeleted.ids).toEqual(await exact('admin', 'kerberos', { includeDeleted: true }));
    const matches = (await exact('admin', 'kerberos', { includeDeleted: true })).includes(deleted.id);
    expect(without.ids.includes(deleted.id)).toBe(false);
    expect(withDeleted.ids.includes(deleted.id)).toBe(matches);
  });

  it('with filters or least relevant first the order is exact too', async () => {
    const expected = await exact('admin', 'kerberos');
    const asc = await allPages('admin', 'q=kerberos&order=asc', 9);
    expect(asc.ids).toEqual([...expected].reverse());
    const filtered = await allPages('admin', `q=kerberos&requester=${otherUser.id}`, 6);
    const owned = new Set((await db.sql<{ id: string }[]>`
      select id from public.tickets where tenant_id = ${acme} and created_by = ${otherUser.id}`).map((t) => t.id));
    expect(filtered.ids).toEqual(expected.filter((id) => owned.has(id)));
  });
});

describe('past the candidate bound', () => {
  it('pages never repeat a ticket while new matches are created between them', async () => {
    // One more match than the bound; the best-ranked are the oldest candidates, so they
    // come on the first page, and new tickets would push them out of the candidates.
    const n = SEARCH_CANDIDATES + 10;
    const text = `'Okapi ' || case when g between ${SEARCH_CANDIDATES - 19} and ${SEARCH_CANDIDATES} then 'okapi okapi ' else '' end || g,
       'an okapi', '{}'::text[]`;
    await bulk(acme, n, text, { team: teams.acme, by: users.acmeUser.id, olderBy: 50_000 });
    await db.sql`analyze public.tickets`;
    const original = new Set(await exact('admin', 'okapi'));
    expect(original.size).toBe(n);
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await call(app, 'GET', `/tickets?q=okapi&limit=10${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.admin });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      ids.push(...r.body.items.map((t: { id: string }) => t.id));
      cursor = r.body.next;
      // After the first page, 30 new matches (the newest tickets of the tenant).
      if (++pages === 1) await bulk(acme, 30, `'Okapi new ' || g, 'an okapi', '{}'::text[]`, { team: teams.acme, by: users.acmeUser.id, olderBy: -10 });
      expect(pages).toBeLessThan(300);
    } while (cursor);
    expect(ids.length - new Set(ids).size, 'tickets shown twice').toBe(0);
    expect(ids.filter((id) => original.has(id)).length).toBe(n);
  }, 60_000);

  it(`ranks the newest ${SEARCH_CANDIDATES} matches first, then the older ones in the exact order, each once`, async () => {
    // 1,300 more matches of "zebra" for acme's customer; the best-ranked (zebra in title,
    // body and tags) are the oldest, so the bound shows.
    const text = `'Zebra ' || case when g > 1100 then 'zebra zebra ' else '' end || g,
       case when g > 1100 then 'zebra crossing zebra' else 'a striped animal: zebra' end,
       case when g > 1100 then array['zebra'] else '{}' end`;
    await bulk(acme, 1300, text, { team: teams.acme, by: users.acmeUser.id });
    await db.sql`analyze public.tickets`;
    const expected = await exact('admin', 'zebra');
    expect(expected.length).toBe(1300);
    const newest = new Set((await db.sql<{ id: string }[]>`
      select id from public.tickets where tenant_id = ${acme} and search @@ websearch_to_tsquery('english', 'zebra')
      order by created_at desc, id desc limit ${SEARCH_CANDIDATES}`).map((t) => t.id));
    const check = async () => {
      const { ids } = await allPages('admin', 'q=zebra', 100);
      expect(ids.length).toBe(1300);
      // First the candidates, ranked exactly among themselves; then the rest, ranked.
      expect(ids.slice(0, SEARCH_CANDIDATES)).toEqual(expected.filter((id) => newest.has(id)));
      expect(ids.slice(SEARCH_CANDIDATES)).toEqual(expected.filter((id) => !newest.has(id)));
      // The agent (their team) pages the same way; the customer (who filed them all)
      // gets the exact order: candidates are ranked for staff only.
      expect((await allPages('agent', 'q=zebra', 100)).ids).toEqual(ids);
      expect((await allPages('user', 'q=zebra', 100)).ids).toEqual(expected);
    };
    // Here the exact top ten are all old: the first page misses them (the documented
    // approximation), and they come first once the pages pass the bound.
    expect(expected.slice(0, 10).every((id) => !newest.has(id))).toBe(true);
    // A small tenant: the candidates come through the search index.
    await check();
    // 20,000 older tickets that do not match: the candidates come from a walk of the
    // newest tickets, with the same result.
    await bulk(acme, 20_000, `'Filler ' || g, 'nothing here', '{}'::text[]`, {
      team: teams.acme,
      by: users.acmeUser.id,
      olderBy: 100_000,
    });
    await db.sql`vacuum analyze public.tickets`;
    await check();
  }, 120_000);
});

describe('bad input', () => {
  const cases: [string, string][] = [
    ['/tickets?q=', 'q'],
    ['/tickets?q=%20%20', 'q'],
    [`/tickets?q=${'x'.repeat(201)}`, 'q'],
    ['/tickets?q=a%00b', 'q'],
    ['/tickets?q=kerberos&cursor=garbage', 'cursor'],
    [`/tickets?q=kerberos&cursor=${encodeCursor(['z', '', '', '', '', ''])}`, 'cursor'],
    [`/tickets?q=kerberos&cursor=${encodeCursor(['c', '', '', '', '', ''])}`, 'cursor'],
    [`/tickets?q=kerberos&cursor=${encodeCursor(['x', '0.1', '', '', '', ''])}`, 'cursor'],
    [
      `/tickets?q=kerberos&cursor=${
        encodeCursor(['x', 'NaN', '2026-01-01T00:00:00.000000Z', '00000000-0000-4000-8000-000000000000', '', ''])
      }`,
      'cursor',
    ],
    [
      `/tickets?q=kerberos&cursor=${encodeCursor(['x', '0.1', 'yesterday', '00000000-0000-4000-8000-000000000000', '', ''])}`,
      'cursor',
    ],
    [`/tickets?q=kerberos&cursor=${encodeCursor(['x', '0.1', '2026-01-01T00:00:00.000000Z', 'nope', '', ''])}`, 'cursor'],
    [`/tickets?q=kerberos&cursor=${encodeCursor(['created', 'id'])}`, 'cursor'],
    // A candidate-phase cursor where the order is exact (other filters).
    [
      `/tickets?q=kerberos&status=open&cursor=${
        encodeCursor(['c', '0.1', '2026-01-01T00:00:00.000000Z', '00000000-0000-4000-8000-000000000000', '', ''])
      }`,
      'cursor',
    ],
    ['/tickets?sort=relevance', 'sort'],
  ];
  it.each(cases)('GET %s → 422 on "%s"', async (url, field) => {
    const r = await call(app, 'GET', url, { token: tok.agent });
    expect([r.status, errorCode(r)], JSON.stringify(r.body)).toEqual([422, 'validation_failed']);
    const fields: string[] = r.body.error.details.fields.map((f: { field: string }) => f.field);
    expect(fields.some((f) => f === field || f.startsWith(`${field}.`)), JSON.stringify(fields)).toBe(true);
  });

  it('a syntactically odd query is no error, just a search', async () => {
    for (const q of ['"unbalanced', '-', 'or or', '&|!()', "'; drop table tickets; --"]) {
      const r = await call(app, 'GET', `/tickets?q=${encodeURIComponent(q)}`, { token: tok.agent });
      expect(r.status, `${q}: ${JSON.stringify(r.body)}`).toBe(200);
    }
  });

  it('no token: 401 in the common shape', async () => {
    const r = await call(app, 'GET', '/tickets?q=kerberos');
    expect(r.status).toBe(401);
    errorCode(r);
  });
});
