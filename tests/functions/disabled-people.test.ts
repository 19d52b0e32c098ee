// A person disabled on the platform (users.status = 'disabled': they can no longer sign
// in) is given no tickets (20261206039000): round robin and least-open pick the team's
// other agents, and assigning them by hand is a 422 naming assigned_to. Before, new
// tickets kept going to them and sat until their SLA broke.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const acme = tenants.acme.id;
const colleague = { id: '00000000-0000-4000-8000-0000000000d1', email: 'second.agent@acme.test' };
let admin: string;

beforeAll(async () => {
  db = await freshDatabase('fn_disabled_people');
  auth = await configureAuth(db.url);
  admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  // A second agent on the team, so the team always has someone to pick.
  await db.sql`insert into public.users (id, email) values (${colleague.id}, ${colleague.email})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${colleague.id}, 'agent')`;
  await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${teams.acme}, ${colleague.id})`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const file = (title: string) => call(app, 'POST', '/tickets', { token: admin, body: { title, team_id: teams.acme } });

describe('a person disabled on the platform', () => {
  for (const mode of ['round_robin', 'least_open'] as const) {
    it(`is not picked by ${mode}`, async () => {
      await db.sql`update public.teams set auto_assign = ${mode} where id = ${teams.acme}`;
      // The agent about to be disabled holds the fewest open tickets (least_open's pick).
      await db.sql`update public.tickets set assigned_to = null where tenant_id = ${acme} and assigned_to = ${users.acmeAgent.id}`;
      // Enabled, they are picked (in turn, or by load): the team really assigns to them.
      const picked = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const t = await file(`${mode} ticket ${i}`);
        expect(t.status, JSON.stringify(t.body)).toBe(201);
        picked.add(t.body.assigned_to);
      }
      expect(picked.has(users.acmeAgent.id)).toBe(true);
      await db.sql`update public.users set status = 'disabled' where id = ${users.acmeAgent.id}`;
      try {
        for (let i = 0; i < 4; i++) {
          const t = await file(`${mode} ticket while disabled ${i}`);
          expect(t.body.assigned_to).toBe(colleague.id);
        }
      } finally {
        await db.sql`update public.users set status = 'active' where id = ${users.acmeAgent.id}`;
      }
    });
  }

  it('is refused as an assignee, naming assigned_to, and the ticket keeps its assignee', async () => {
    await db.sql`update public.teams set auto_assign = 'none' where id = ${teams.acme}`;
    const t = await file('Assigned by hand');
    expect(t.body.assigned_to).toBeNull();
    await db.sql`update public.users set status = 'disabled' where id = ${users.acmeAgent.id}`;
    try {
      const r = await call(app, 'PUT', `/tickets/${t.body.id}/assignee`, { token: admin, body: { user_id: users.acmeAgent.id } });
      expect([r.status, errorCode(r), r.body.error.details.fields]).toEqual([422, 'validation_failed', [
        { field: 'user_id', message: 'is disabled on the platform' },
      ]]);
      const [row] = await db.sql`select assigned_to from public.tickets where id = ${t.body.id}`;
      expect(row.assigned_to).toBeNull();
    } finally {
      await db.sql`update public.users set status = 'active' where id = ${users.acmeAgent.id}`;
    }
    const ok = await call(app, 'PUT', `/tickets/${t.body.id}/assignee`, { token: admin, body: { user_id: users.acmeAgent.id } });
    expect([ok.status, ok.body.assigned_to]).toEqual([200, users.acmeAgent.id]);
  });
});
