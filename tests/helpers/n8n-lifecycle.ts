// The n8n connector's whole lifecycle, driven through the provisioning job and the
// reconcile pass exactly as production runs them, against an n8n given by the caller:
// the stand-in (tests/n8n-lifecycle.test.ts, in the normal suite) or the real n8n 2.8.4
// (tests/partners-real/n8n.real.test.ts, `npm run test:n8n`). The same assertions pass
// against both, so the stand-in answers what the real server answers.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import type { Connectors } from '../../shared/connectors/index.ts';
import { n8nConnector } from '../../shared/connectors/n8n.ts';
import { decryptJson } from '../../shared/crypto.ts';
import { closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { freshDatabase, type TestDatabase } from './db.ts';
import { call } from './http.ts';
import { users } from './seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from './tokens.ts';

/** The n8n under test: its URL and the owner's API key, plus what only its owner (or
 *  the invitee) can do outside the public API. */
export interface N8nUnderTest {
  url: string;
  apiKey: string;
  /** Switches n8n's projects licence (feat:projectRole:admin) on. */
  licenseProjects(): Promise<void>;
  /** The invitee signs up through the link. */
  acceptInvitation(inviteUrl: string): Promise<void>;
  /** Whether the link still resolves (n8n: GET /rest/resolve-signup-token → 200). */
  invitationValid(inviteUrl: string): Promise<boolean>;
}

type Service = {
  state: string;
  desired_state: string;
  last_error: string | null;
  external_ids: Record<string, any>;
  credentials_encrypted: string | null;
  drift_detected_at: Date | null;
  drift_repaired_at: Date | null;
};

export function describeN8nLifecycle(label: string, start: () => Promise<N8nUnderTest>, timeoutMs = 10_000) {
  describe(`n8n lifecycle through the provisioning job (${label})`, () => {
    let db: TestDatabase;
    let auth: AuthFixture;
    let n8n: N8nUnderTest;
    let superToken: string;
    const connectors = (mode: 'shared' | 'projects'): Connectors => ({
      n8n: n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode, timeoutMs }),
    });

    /** n8n's public API as its owner. */
    async function api(method: string, path: string, body?: unknown) {
      const res = await fetch(`${n8n.url}/api/v1${path}`, {
        method,
        headers: { 'x-n8n-api-key': n8n.apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    }
    const userAt = async (idOrEmail: string) => {
      const r = await api('GET', `/users/${encodeURIComponent(idOrEmail)}`);
      return r.status === 200 ? r.body as { id: string; email: string; isPending: boolean } : undefined;
    };
    const teamProjects = async (name: string) => {
      const all: { id: string; name: string; type: string }[] = [];
      let cursor: string | null = null;
      do {
        const r = await api('GET', `/projects?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        all.push(...r.body.data);
        cursor = r.body.nextCursor;
      } while (cursor);
      return all.filter((p) => p.type === 'team' && p.name === name);
    };
    const members = async (projectId: string) =>
      ((await api('GET', `/users?projectId=${projectId}`)).body.data as { id: string }[]).map((u) => u.id);

    async function drain(mode: 'shared' | 'projects') {
      for (let i = 0; i < 20; i++) {
        await db.sql`update private.jobs set run_at = now() where task = 'provision' and dead_at is null and attempts > 0 and run_at > now()`;
        const r = await runJobs({ tasks: ['provision'], deps: { connectors: connectors(mode) }, budgetMs: 60_000 });
        if (r.claimed === 0) return;
      }
      throw new Error('the queue did not drain');
    }
    /** The scheduled reconcile pass, due now, every service checked (no interval). */
    async function runReconcile(mode: 'shared' | 'projects') {
      await db.sql`update private.job_schedules set next_run_at = now() where name = 'reconcile'`;
      return await runJobs({
        tasks: ['reconcile'],
        schedule: true,
        deps: { connectors: connectors(mode), driftCheckIntervalS: 0, driftChecksPerPartner: 50 },
        budgetMs: 60_000,
      });
    }

    async function service(tenantId: string): Promise<Service> {
      const [s] = await db.sql<Service[]>`
        select state, desired_state, last_error, external_ids, credentials_encrypted, drift_detected_at, drift_repaired_at
        from public.tenant_services where tenant_id = ${tenantId} and service = 'n8n'`;
      return s;
    }
    const credentials = async (tenantId: string) =>
      await decryptJson((await service(tenantId)).credentials_encrypted!, { tenantId, service: 'n8n' }) as {
        email: string;
        invite_url: string | null;
      };

    let count = 0;
    async function createTenant(email?: string) {
      const slug = `n8n-${++count}-${randomBytes(3).toString('hex')}`;
      const admin = email ?? `owner@${slug}.test`;
      const r = await call(tenantsApp, 'POST', '/tenants', {
        token: superToken,
        body: { name: `N8n ${count}`, slug, services: ['n8n'], admin: { email: admin, first_name: 'Olive' } },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return { id: r.body.id as string, slug, email: admin };
    }
    async function removeTenant(tenantId: string, mode: 'shared' | 'projects') {
      await call(tenantsApp, 'DELETE', `/tenants/${tenantId}`, { token: superToken });
      await db.sql`update public.tenant_services set remove_after = now() where tenant_id = ${tenantId}`;
      await drain(mode);
    }
    /** Runs the removal again, as after a lost answer: the partner already removed it all. */
    async function removeAgain(tenantId: string, mode: 'shared' | 'projects') {
      await db.sql`update public.tenant_services set state = 'active' where tenant_id = ${tenantId}`;
      expect((await db.sql`select private.reconcile_tenant_services() as n`)[0].n).toBeGreaterThanOrEqual(1);
      await drain(mode);
      expect(await service(tenantId)).toMatchObject({ state: 'removed', last_error: null });
    }

    beforeAll(async () => {
      n8n = await start();
      db = await freshDatabase('n8n_lifecycle');
      auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
      superToken = await supabaseToken(users.super);
    });
    afterAll(async () => {
      await closeDb();
      await auth?.close();
      await db?.close();
    });

    describe("n8n's answers (recorded from 2.8.4; the stand-in gives the same)", () => {
      const LICENCE = 'Your license does not allow for feat:projectRole:admin. To enable feat:projectRole:admin, please upgrade to a license that supports this feature.';
      it('for users, keys and an unlicensed /projects', async () => {
        const missing = `missing-${randomBytes(3).toString('hex')}@n8n.test`;
        expect(await api('GET', `/users/${missing}`)).toEqual({ status: 404, body: { message: `Could not find user with id: ${missing}` } });
        expect(await api('GET', '/users/not-an-id')).toEqual({ status: 400, body: { message: 'request/params/id must match format "identifier"' } });
        expect(await api('DELETE', '/users/00000000-0000-4000-8000-0000000000ff')).toEqual({
          status: 400,
          body: { message: 'Request to delete a user failed because the user to delete was not found in DB' },
        });
        expect(await api('POST', '/users', { email: missing })).toEqual({ status: 400, body: { message: 'request/body must be array' } });
        const invited = await api('POST', '/users', [{ email: missing, role: 'global:member' }]);
        expect(invited).toEqual({
          status: 201,
          body: [{
            user: { id: expect.any(String), email: missing, emailSent: false, role: 'global:member', inviteAcceptUrl: expect.stringMatching(/\/signup\?inviterId=.+&inviteeId=/) },
            error: '',
          }],
        });
        expect(await api('GET', `/users/${missing}?includeRole=true`)).toEqual({
          status: 200,
          body: { id: invited.body[0].user.id, email: missing, firstName: null, lastName: null, createdAt: expect.any(String), updatedAt: expect.any(String), isPending: true, role: 'global:member' },
        });
        expect((await api('DELETE', `/users/${invited.body[0].user.id}`)).status).toBe(204);
        const bare = async (headers: Record<string, string>) => {
          const res = await fetch(`${n8n.url}/api/v1/users/${missing}`, { headers });
          return { status: res.status, body: await res.json() };
        };
        expect(await bare({ 'x-n8n-api-key': 'wrong' })).toEqual({ status: 401, body: { message: 'unauthorized' } });
        expect(await bare({})).toEqual({ status: 401, body: { message: "'X-N8N-API-KEY' header required" } });
        expect(await api('GET', '/projects')).toEqual({ status: 403, body: { message: LICENCE } });
      });
    });

    describe('shared mode (no licence needed)', () => {
      let a: { id: string; slug: string; email: string };
      let b: { id: string; slug: string; email: string };

      it('ensure invites the admin once and keeps the invitation link', async () => {
        a = await createTenant();
        await drain('shared');
        const s = await service(a.id);
        expect(s).toMatchObject({ state: 'active', last_error: null, external_ids: { user_id: expect.any(String) } });
        const user = await userAt(a.email);
        expect(user).toMatchObject({ id: s.external_ids.user_id, isPending: true });
        const creds = await credentials(a.id);
        expect(creds).toMatchObject({ email: a.email, invite_url: expect.stringContaining(`inviteeId=${user!.id}`) });
        expect(await n8n.invitationValid(creds.invite_url!)).toBe(true);
      });

      it('a rerun duplicates nothing and keeps the same link', async () => {
        const before = await credentials(a.id);
        await db.sql`update public.tenant_services set state = 'pending' where tenant_id = ${a.id}`;
        await db.sql`select private.reconcile_tenant_services()`;
        await drain('shared');
        const list = (await api('GET', '/users?limit=250')).body.data as { email: string }[];
        expect(list.filter((u) => u.email === a.email)).toHaveLength(1);
        expect(await service(a.id)).toMatchObject({ state: 'active' });
        expect(await credentials(a.id)).toEqual(before);
      });

      it('re-inviting a pending e-mail answers 201 with the same user and link', async () => {
        const r = await api('POST', '/users', [{ email: a.email, role: 'global:member' }]);
        expect(r.status).toBe(201);
        expect(r.body).toEqual([{ user: expect.objectContaining({ id: (await service(a.id)).external_ids.user_id, inviteAcceptUrl: (await credentials(a.id)).invite_url }), error: '' }]);
      });

      it('a second tenant with the same admin reuses the login and also gets the link', async () => {
        b = await createTenant(a.email);
        await drain('shared');
        expect((await service(b.id)).external_ids.user_id).toBe((await service(a.id)).external_ids.user_id);
        expect((await credentials(b.id)).invite_url).toBe((await credentials(a.id)).invite_url);
      });

      it('suspend revokes a pending invitation nobody else uses; resume invites again with a new link', async () => {
        const t = await createTenant();
        await drain('shared');
        const link = (await credentials(t.id)).invite_url!;
        await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
        await drain('shared');
        expect(await service(t.id)).toMatchObject({ state: 'suspended', last_error: null });
        expect(await userAt(t.email)).toBeUndefined();
        expect(await n8n.invitationValid(link)).toBe(false);
        await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
        await drain('shared');
        expect(await service(t.id)).toMatchObject({ state: 'active', last_error: null });
        const again = (await credentials(t.id)).invite_url!;
        expect(again).not.toBe(link);
        expect(await n8n.invitationValid(again)).toBe(true);
        await removeTenant(t.id, 'shared');
      });

      it('suspend and resume of a login another tenant uses: recorded, the login stays', async () => {
        await call(tenantsApp, 'POST', `/tenants/${a.id}/suspend`, { token: superToken });
        await drain('shared');
        expect(await service(a.id)).toMatchObject({ state: 'suspended', last_error: null });
        expect(await userAt(a.email)).toBeDefined();
        await call(tenantsApp, 'POST', `/tenants/${a.id}/resume`, { token: superToken });
        await drain('shared');
        expect(await service(a.id)).toMatchObject({ state: 'active', last_error: null });
      });

      it('removing one of two tenants keeps the login the other uses; removing again is a no-op', async () => {
        await removeTenant(a.id, 'shared');
        expect(await service(a.id)).toMatchObject({ state: 'removed', last_error: null });
        expect(await userAt(a.email)).toBeDefined();
        expect(await n8n.invitationValid((await credentials(b.id)).invite_url!)).toBe(true);
        await removeAgain(a.id, 'shared');
      });

      it('drift: a login deleted at n8n is found by reconcile, recorded, announced and re-created', async () => {
        await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${b.id}, 'http://127.0.0.1:9/hook', 'unused')`;
        const old = (await service(b.id)).external_ids.user_id;
        expect((await api('DELETE', `/users/${old}`)).status).toBe(204);
        const report = await runReconcile('shared');
        expect(report.tasks.reconcile).toMatchObject({ drifted: 1 });
        const drifted = await service(b.id);
        expect(drifted).toMatchObject({ state: 'pending', drift_detected_at: expect.any(Date), drift_repaired_at: null });
        const [event] = await db.sql`select payload from private.webhook_events where tenant_id = ${b.id} and type = 'service.drift_detected'`;
        expect(event.payload).toMatchObject({ type: 'service.drift_detected', data: { service: 'n8n', drift_detail: expect.stringContaining('n8n') } });
        expect(JSON.stringify(event.payload)).not.toContain('credentials_encrypted');
        const adminToken = await ownerToken(b.email);
        const listed = await call(tenantsApp, 'GET', `/tenants/${b.id}/services`, { token: adminToken });
        expect(listed.body.items[0]).toMatchObject({ service: 'n8n', drift_detected_at: expect.any(String), drift_detail: expect.any(String) });

        await drain('shared');
        const repaired = await service(b.id);
        expect(repaired).toMatchObject({ state: 'active', last_error: null, drift_repaired_at: expect.any(Date) });
        expect(repaired.external_ids.user_id).not.toBe(old);
        expect(await userAt(b.email)).toMatchObject({ id: repaired.external_ids.user_id });
        expect(await n8n.invitationValid((await credentials(b.id)).invite_url!)).toBe(true);
        // Checked again: nothing drifted.
        expect((await runReconcile('shared')).tasks.reconcile).toMatchObject({ drifted: 0, checked: expect.any(Number) });
      });

      it('removing the last tenant of a login revokes its invitation; removing again is a no-op', async () => {
        const link = (await credentials(b.id)).invite_url!;
        await removeTenant(b.id, 'shared');
        expect(await service(b.id)).toMatchObject({ state: 'removed', last_error: null });
        expect(await userAt(b.email)).toBeUndefined();
        expect(await n8n.invitationValid(link)).toBe(false);
        // n8n answers 400 "… not found in DB" for the user now: counts as removed.
        expect((await api('DELETE', `/users/${(await service(b.id)).external_ids.user_id}`)).status).toBe(400);
        await removeAgain(b.id, 'shared');
      });

      it('a login that already joined: re-inviting answers 201 [], and ensure finds the login', async () => {
        const c = await createTenant();
        await drain('shared');
        await n8n.acceptInvitation((await credentials(c.id)).invite_url!);
        const r = await api('POST', '/users', [{ email: c.email, role: 'global:member' }]);
        expect([r.status, r.body]).toEqual([201, []]);
        await db.sql`update public.tenant_services set state = 'pending' where tenant_id = ${c.id}`;
        await db.sql`select private.reconcile_tenant_services()`;
        await drain('shared');
        expect(await service(c.id)).toMatchObject({ state: 'active', last_error: null });
        expect(await credentials(c.id)).toEqual({ email: c.email, invite_url: null });
        expect(await userAt(c.email)).toMatchObject({ isPending: false, id: (await service(c.id)).external_ids.user_id });
      });
    });

    describe('projects mode (licensed)', () => {
      let d: { id: string; slug: string; email: string };
      beforeAll(async () => {
        await n8n.licenseProjects();
      });

      it("n8n's answers for projects", async () => {
        const made = await api('POST', '/projects', { name: 'recorded' });
        expect(made).toMatchObject({ status: 201, body: { name: 'recorded', type: 'team', id: expect.any(String), icon: null, description: null, role: 'project:admin' } });
        const id = made.body.id;
        expect(await api('POST', '/projects', { name: 'recorded' })).toMatchObject({ status: 201, body: { id: expect.not.stringMatching(`^${id}$`) } });
        expect(await api('GET', `/projects/${id}`)).toEqual({ status: 405, body: { message: 'GET method not allowed' } });
        const listed = await api('GET', '/projects?limit=250');
        expect(listed.body.data.some((p: { type: string }) => p.type === 'personal')).toBe(true);
        for (const p of await teamProjects('recorded')) expect((await api('DELETE', `/projects/${p.id}`)).status).toBe(204);
        expect(await api('DELETE', `/projects/${id}`)).toEqual({ status: 400, body: { message: `Could not find project with ID: ${id}` } });
        const everyone = (await api('GET', '/users?includeRole=true&limit=250')).body.data as { id: string; role: string }[];
        const relations = [{ userId: everyone.find((u) => u.role === 'global:owner')!.id, role: 'project:admin' }];
        expect(await api('POST', `/projects/${id}/users`, { relations })).toEqual({ status: 404, body: { message: `Could not find project with ID: ${id}` } });
        // Bodies are checked first; a refusal is the first zod issue, not {message}.
        expect(await api('POST', `/projects/${id}/users`, { relations: [] })).toEqual({
          status: 400,
          body: { code: 'too_small', minimum: 1, type: 'array', inclusive: true, exact: false, message: 'Array must contain at least 1 element(s)', path: ['relations'] },
        });
      });

      it('ensure makes one project with the admin in it; a rerun makes no second one', async () => {
        d = await createTenant();
        await drain('projects');
        const s = await service(d.id);
        expect(s).toMatchObject({ state: 'active', last_error: null, external_ids: { user_id: expect.any(String), project_id: expect.any(String) } });
        expect(await teamProjects(`tenant-${d.slug}`)).toHaveLength(1);
        expect(await members(s.external_ids.project_id)).toContain(s.external_ids.user_id);
        await db.sql`update public.tenant_services set state = 'pending' where tenant_id = ${d.id}`;
        await db.sql`select private.reconcile_tenant_services()`;
        await drain('projects');
        expect(await teamProjects(`tenant-${d.slug}`)).toHaveLength(1);
      });

      it('suspend takes the admin out of the project, resume puts them back', async () => {
        const { user_id: userId, project_id: projectId } = (await service(d.id)).external_ids;
        await call(tenantsApp, 'POST', `/tenants/${d.id}/suspend`, { token: superToken });
        await drain('projects');
        expect(await service(d.id)).toMatchObject({ state: 'suspended', last_error: null });
        expect(await members(projectId)).not.toContain(userId);
        // Suspending again (a lost answer) changes nothing: n8n answers 204 again.
        expect((await api('DELETE', `/projects/${projectId}/users/${userId}`)).status).toBe(204);
        await call(tenantsApp, 'POST', `/tenants/${d.id}/resume`, { token: superToken });
        await drain('projects');
        expect(await service(d.id)).toMatchObject({ state: 'active', last_error: null });
        expect(await members(projectId)).toContain(userId);
      });

      it('drift: a project deleted at n8n is re-created by reconcile', async () => {
        const old = (await service(d.id)).external_ids.project_id;
        expect((await api('DELETE', `/projects/${old}`)).status).toBe(204);
        // (Tenants provisioned in shared mode have no project: they drift into this mode too.)
        expect((await runReconcile('projects')).tasks.reconcile?.drifted).toBeGreaterThanOrEqual(1);
        expect(await service(d.id)).toMatchObject({ state: 'pending', drift_detected_at: expect.any(Date) });
        await drain('projects');
        const s = await service(d.id);
        expect(s).toMatchObject({ state: 'active', drift_repaired_at: expect.any(Date) });
        expect(s.external_ids.project_id).not.toBe(old);
        expect(await members(s.external_ids.project_id)).toContain(s.external_ids.user_id);
      });

      it('removal deletes the project and the unshared login; again, n8n answers 400 "Could not find" and that counts as removed', async () => {
        const { project_id: projectId } = (await service(d.id)).external_ids;
        await removeTenant(d.id, 'projects');
        expect(await service(d.id)).toMatchObject({ state: 'removed', last_error: null });
        expect(await teamProjects(`tenant-${d.slug}`)).toHaveLength(0);
        expect(await userAt(d.email)).toBeUndefined();
        const again = await api('DELETE', `/projects/${projectId}`);
        expect(again).toEqual({ status: 400, body: { message: `Could not find project with ID: ${projectId}` } });
        await removeAgain(d.id, 'projects');
      });
    });

    async function ownerToken(email: string) {
      const [u] = await db.sql`select id from public.users where email = ${email}`;
      await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${u.id}, ${u.id}) on conflict do nothing`;
      return await supabaseToken({ id: u.id, email });
    }
  });
}
