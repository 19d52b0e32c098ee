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
