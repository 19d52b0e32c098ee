// The n8n connector against its stand-in (tests/partners/n8n.ts, recorded from n8n 2.8.4),
// step by step as the provision task runs it: what the recorded ids decide.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { n8nConnector } from '../../shared/connectors/n8n.ts';
import { N8nStandIn } from '../partners/n8n.ts';
import { check, step, tenant } from './harness.ts';

let n8n: N8nStandIn;
const projects = () => n8n.projects;

beforeAll(async () => {
  n8n = await N8nStandIn.start();
  n8n.licensed = true;
});
afterAll(() => n8n.server.close());

describe('projects mode', () => {
  const connector = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'projects', timeoutMs: 3_000 });

  it("keeps the tenant's project after its slug changes: suspended and resumed, the owner is back in it, and removal removes it", async () => {
    const t = tenant('n8n-renamed');
    await step(connector(), t, 'ensure');
    const projectId = t.externalIds.project_id as string;
    expect(projects().get(projectId)?.members.get(t.externalIds.user_id)).toBe('project:admin');
    // A platform admin changes the slug (the project's name came from the old one).
    t.tenant.slug = 'n8n-renamed-2';
    await step(connector(), t, 'suspend');
    expect(projects().get(projectId)?.members.has(t.externalIds.user_id)).toBe(false);
    const before = projects().size;
    await step(connector(), t, 'ensure');
    expect(t.externalIds.project_id).toBe(projectId);
    expect(projects().size).toBe(before);
    expect(projects().get(projectId)?.members.get(t.externalIds.user_id)).toBe('project:admin');
    expect(await check(connector(), t)).toBe(true);
    // Another tenant given the old slug later gets a project of its own.
    const other = tenant('n8n-renamed', 'other.owner@n8n-renamed.test');
    await step(connector(), other, 'ensure');
    expect(other.externalIds.project_id).not.toBe(projectId);
    expect(projects().get(projectId)?.members.has(other.externalIds.user_id)).toBe(false);
    // One with the old slug that never recorded a project (its create answer lost, say)
    // removes nothing of the first tenant's when it goes.
    const stranger = tenant('n8n-renamed', 'stranger@n8n-renamed.test');
    await step(connector(), stranger, 'remove');
    expect(projects().has(projectId)).toBe(true);
    await step(connector(), t, 'remove');
    expect(projects().has(projectId)).toBe(false);
  });

  it("a tenant given another's old slug names its project apart, so a lost create is found again, not made twice", async () => {
    const a = tenant('n8n-twice');
    await step(connector(), a, 'ensure');
    a.tenant.slug = 'n8n-twice-2';
    const c = tenant('n8n-twice', 'c.owner@n8n-twice.test');
    const before = projects().size;
    // The create's answer is lost; the retry finds the project the lost call made.
    n8n.server.faults = { ...n8n.server.faults, match: /^POST \/api\/v1\/projects$/, dropAfterWork: 1 };
    await expect(step(connector(), c, 'ensure')).rejects.toMatchObject({ retryable: true });
    await step(connector(), c, 'ensure');
    expect(projects().size).toBe(before + 1);
    expect(projects().get(c.externalIds.project_id)?.name).toBe(`tenant-n8n-twice-${c.tenant.id.slice(0, 8)}`);
    // Its removal with the id lost removes its own project, not the first tenant's.
    await step(connector(), { ...c, externalIds: { user_id: c.externalIds.user_id } }, 'remove');
    expect(projects().has(c.externalIds.project_id)).toBe(false);
    expect(projects().has(a.externalIds.project_id)).toBe(true);
  });

  it('a recorded project deleted at n8n is made again (drift repair), under the current name', async () => {
    const t = tenant('n8n-drift');
    await step(connector(), t, 'ensure');
    const gone = t.externalIds.project_id as string;
    projects().delete(gone);
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(t.externalIds.project_id).not.toBe(gone);
    expect(projects().get(t.externalIds.project_id)?.name).toBe('tenant-n8n-drift');
    expect(await check(connector(), t)).toBe(true);
  });
});

describe('an answer lost before the ids were recorded', () => {
  const shared = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'shared', timeoutMs: 3_000 });
  const projectsMode = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'projects', timeoutMs: 3_000 });
  const userOf = (email: string) => [...n8n.users.values()].find((u) => u.email === email);

  it("shared mode: suspending, or removing, a tenant whose invitation's id was never recorded still revokes the invitation", async () => {
    for (const which of ['suspend', 'remove'] as const) {
      const t = tenant(`n8n-lost-${which}`);
      await step(shared(), t, 'ensure');
      expect(userOf(t.admin!.email)?.isPending).toBe(true);
      // The same tenant as the job saw it when the invitation's answer never came.
      t.externalIds = {};
      await step(shared(), t, which);
      expect(userOf(t.admin!.email), which).toBeUndefined();
    }
  });

  it("shared mode: removing a tenant whose id was never recorded leaves a joined login found by e-mail alone (maybe someone's own)", async () => {
    const t = tenant('n8n-lost-joined');
    await step(shared(), t, 'ensure');
    userOf(t.admin!.email)!.isPending = false; // they accepted the invitation
    t.externalIds = {};
    await step(shared(), t, 'remove');
    expect(userOf(t.admin!.email)).toBeDefined();
  });

  it("projects mode: suspending a tenant whose ids were never recorded takes the owner out of the tenant's project", async () => {
    const t = tenant('n8n-lost-project');
    await step(projectsMode(), t, 'ensure');
    const projectId = t.externalIds.project_id as string;
    const userId = t.externalIds.user_id as string;
    t.externalIds = {};
    await step(projectsMode(), t, 'suspend');
    expect(projects().get(projectId)?.members.has(userId)).toBe(false);
  });
});

describe("whose login the tenant's owner is", () => {
  const shared = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'shared', timeoutMs: 3_000 });
  const projectsMode = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'projects', timeoutMs: 3_000 });
  const userOf = (email: string) => [...n8n.users.values()].find((u) => u.email === email);

  it("removal leaves a login that had joined before the tenant recorded it (the person's own), in either mode", async () => {
    for (const [mode, connector] of [['shared', shared], ['projects', projectsMode]] as const) {
      const email = `own-${mode}@n8n-own.test`;
      const id = crypto.randomUUID();
      n8n.users.set(id, { id, email, role: 'global:member', isPending: false, createdAt: new Date().toISOString() });
      const t = tenant(`n8n-own-${mode}`, email);
      await step(connector(), t, 'ensure');
      expect(t.externalIds).toMatchObject({ user_id: id, owner_login: 'existing' });
      await step(connector(), t, 'remove');
      expect(userOf(email), mode).toMatchObject({ id, isPending: false });
      if (mode === 'projects') expect(projects().has(t.externalIds.project_id)).toBe(false);
    }
  });

  it('a login recorded before owner_login was kept is not judged afterwards (joined since, it may be the invitation): removal treats it as before', async () => {
    const t = tenant('n8n-legacy');
    await step(shared(), t, 'ensure');
    n8n.accept(t.admin!.email);
    delete t.externalIds.owner_login; // as recorded before this was kept
    await step(shared(), t, 'ensure');
    expect(t.externalIds.owner_login).toBeUndefined();
    await step(shared(), t, 'remove');
    expect(userOf(t.admin!.email)).toBeUndefined();
  });

  it('removal deletes the login the tenant invited, also once its invitation was accepted', async () => {
    const t = tenant('n8n-invited');
    await step(shared(), t, 'ensure');
    expect(t.externalIds.owner_login).toBe('invited');
    n8n.accept(t.admin!.email);
    await step(shared(), t, 'ensure'); // joined since: still the tenant's
    expect(t.externalIds.owner_login).toBe('invited');
    await step(shared(), t, 'remove');
    expect(userOf(t.admin!.email)).toBeUndefined();
  });
});

describe('the owner\'s invitation e-mail', () => {
  const shared = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'shared', timeoutMs: 3_000 });
  const projectsMode = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'projects', timeoutMs: 3_000 });
  afterAll(() => {
    n8n.mail = 'none';
  });

  it('is sent once: a retry, a drift repair or (projects mode) a resume of a pending owner does not invite again', async () => {
    n8n.mail = 'sends';
    for (const [mode, connector] of [['shared', shared], ['projects', projectsMode]] as const) {
      const t = tenant(`n8n-mail-once-${mode}`);
      await step(connector(), t, 'ensure');
      expect(n8n.mailed.filter((m) => m === t.admin!.email), mode).toHaveLength(1);
      // Mailed, so no link to show; the recorded login is the pending one.
      expect(t.credentials).toMatchObject({ email: t.admin!.email, invite_url: null });
      await step(connector(), t, 'ensure'); // a retry
      // Projects mode suspends by taking the owner out of the project (the invitation
      // stays); shared mode revokes a pending invitation, and resuming invites anew.
      if (mode === 'projects') {
        await step(connector(), t, 'suspend');
        await step(connector(), t, 'resume');
      }
      await step(connector(), t, 'ensure'); // a drift repair
      expect(n8n.mailed.filter((m) => m === t.admin!.email), mode).toHaveLength(1);
    }
  });

  it('keeps the link n8n gave while the invitation is pending', async () => {
    n8n.mail = 'none';
    const t = tenant('n8n-mail-link');
    await step(shared(), t, 'ensure');
    const link = t.credentials!.invite_url as string;
    expect(link).toContain('/signup?');
    n8n.mail = 'sends'; // a later ensure would mail it (and lose the link) if it invited again
    await step(shared(), t, 'ensure');
    expect(t.credentials!.invite_url).toBe(link);
    expect(n8n.mailed).not.toContain(t.admin!.email);
  });

  it('not mailed (the mailer failing): the link n8n still gives is kept for the owner, and the invitation is not sent again', async () => {
    n8n.mail = 'fails';
    const t = tenant('n8n-mail-fails');
    await step(shared(), t, 'ensure');
    expect(t.credentials!.invite_url).toContain('/signup?');
    n8n.mail = 'sends';
    await step(shared(), t, 'ensure');
    expect(n8n.mailed).not.toContain(t.admin!.email);
  });
});

describe("a suspended tenant's workflows (projects mode)", () => {
  const connector = () => n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'projects', timeoutMs: 3_000 });
  const workflow = (projectId: string, name: string, active: boolean) => {
    const id = crypto.randomUUID().slice(0, 16);
    n8n.workflows.set(id, { id, name, active, projectId });
    return id;
  };
  const activeIn = (projectId: string) =>
    [...n8n.workflows.values()].filter((w) => w.projectId === projectId && w.active).map((w) => w.name).sort();

  it('stop while it is suspended and run again when it resumes; one stopped by hand stays stopped', async () => {
    const t = tenant('n8n-workflows');
    await step(connector(), t, 'ensure');
    const projectId = t.externalIds.project_id as string;
    workflow(projectId, 'orders', true);
    workflow(projectId, 'nightly', true);
    workflow(projectId, 'draft', false);
    const other = tenant('n8n-workflows-other');
    await step(connector(), other, 'ensure');
    workflow(other.externalIds.project_id, 'theirs', true);

    await step(connector(), t, 'suspend');
    expect(activeIn(projectId)).toEqual([]);
    expect(t.externalIds.paused_workflows).toHaveLength(2);
    expect(activeIn(other.externalIds.project_id)).toEqual(['theirs']);
    // Suspended again (a retry): the record keeps both.
    await step(connector(), t, 'suspend');
    expect(t.externalIds.paused_workflows).toHaveLength(2);

    await step(connector(), t, 'resume');
    await step(connector(), t, 'ensure');
    expect(activeIn(projectId)).toEqual(['nightly', 'orders']);
    expect(t.externalIds.paused_workflows).toEqual([]);
    expect([...n8n.workflows.values()].find((w) => w.name === 'draft')?.active).toBe(false);
  });

  it('a workflow deleted while suspended is skipped, and the rest run again', async () => {
    const t = tenant('n8n-workflows-gone');
    await step(connector(), t, 'ensure');
    const projectId = t.externalIds.project_id as string;
    const gone = workflow(projectId, 'gone', true);
    workflow(projectId, 'kept', true);
    await step(connector(), t, 'suspend');
    n8n.workflows.delete(gone);
    await step(connector(), t, 'ensure');
    expect(activeIn(projectId)).toEqual(['kept']);
    expect(t.externalIds.paused_workflows).toEqual([]);
  });

  it('stop though no owner is found (no admin left, no id recorded)', async () => {
    const t = tenant('n8n-workflows-ownerless');
    await step(connector(), t, 'ensure');
    const projectId = t.externalIds.project_id as string;
    workflow(projectId, 'orphan', true);
    const { user_id: _, ...ids } = t.externalIds;
    t.externalIds = ids;
    t.admin = null;
    await step(connector(), t, 'suspend');
    expect(activeIn(projectId)).toEqual([]);
  });

  it('a suspension cut short after its record is finished by the retry', async () => {
    const t = tenant('n8n-workflows-cut');
    await step(connector(), t, 'ensure');
    const projectId = t.externalIds.project_id as string;
    workflow(projectId, 'a', true);
    workflow(projectId, 'b', true);
    n8n.server.faults = { ...n8n.server.faults, match: /^POST \/api\/v1\/workflows\/[^/]+\/deactivate$/, fail5xx: 1 };
    await expect(step(connector(), t, 'suspend')).rejects.toMatchObject({ retryable: true });
    expect(t.externalIds.paused_workflows).toHaveLength(2);
    await step(connector(), t, 'suspend');
    expect(activeIn(projectId)).toEqual([]);
    await step(connector(), t, 'ensure');
    expect(activeIn(projectId)).toEqual(['a', 'b']);
  });
});
