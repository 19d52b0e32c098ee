// The Botpress connector against a stand-in that answers as @botpress/client 1.45.0's
// generated operations and error table say Botpress Cloud does (tests/partners/botpress.ts).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { botpressConnector } from '../../shared/connectors/botpress.ts';
import { BotpressStandIn } from '../partners/botpress.ts';
import { check, settle, step, tenant } from './harness.ts';

let bp: BotpressStandIn;
const connector = (opts: { deleteOnSuspend?: boolean; timeoutMs?: number } = {}) =>
  botpressConnector({ url: bp.url, token: bp.token, workspaceId: bp.workspaceId, timeoutMs: 3_000, ...opts });

beforeAll(async () => {
  bp = await BotpressStandIn.start();
});
afterEach(() => {
  bp.server.resetFaults();
  Object.assign(bp, { pageSize: 20, botQuota: Infinity, paymentRequired: false, blockForbidden: false, repeatNextToken: false });
  bp.locked.clear();
  bp.deleting.clear();
});
afterAll(() => bp.server.close());

const botsOf = (t: { tenant: { id: string } }) => [...bp.bots.values()].filter((b) => b.tags.tenant_id === t.tenant.id);

describe('finding the tenant bot', () => {
  it('filters by tag as the official client writes it (?tags.tenant_id=…), across pages', async () => {
    // Other tenants' bots first, three to a page: the tenant's bot sits on a later page.
    bp.pageSize = 3;
    for (let i = 0; i < 7; i++) await step(connector(), tenant(`bp-other-${i}`), 'ensure');
    const t = tenant('bp-find');
    await step(connector(), t, 'ensure');
    bp.listQueries.length = 0;
    await step(connector(), { ...t, externalIds: {} }, 'ensure'); // nothing recorded: found by tag
    // @botpress/client: qs.stringify({tags: {tenant_id}}, {encode: true, arrayFormat: 'repeat', allowDots: true})
    expect(bp.listQueries[0]).toBe(`tags.tenant_id=${t.tenant.id}`);
    expect(botsOf(t)).toHaveLength(1);
  });

  it('makes no duplicate through 5xx, 429 with Retry-After, a timeout and a dropped connection', async () => {
    const t = tenant('bp-faults');
    bp.server.faults = { ...bp.server.faults, fail5xx: 1, rateLimit: 1, retryAfterSeconds: 9 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 503 });
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 429, retryAfterSeconds: 9 });
    bp.server.faults = { ...bp.server.faults, match: /^POST \/v1\/admin\/bots$/, dropAfterWork: 1 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true });
    bp.server.faults = { ...bp.server.faults, match: /^GET \/v1\/admin\/bots/, slow: 1, slowMs: 1_000 };
    await expect(step(connector({ timeoutMs: 250 }), t, 'ensure')).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('timed out') });
    await settle(connector(), t, 'ensure');
    expect(botsOf(t)).toHaveLength(1);
    expect(t.externalIds.bot_id).toBe(botsOf(t)[0].id);
  });
});

describe('errors', () => {
  it('409 ResourceLockedConflict is transient: retried, then the step goes through', async () => {
    const t = tenant('bp-lock');
    await step(connector(), t, 'ensure');
    bp.locked.set(t.externalIds.bot_id, 2);
    await expect(step(connector(), t, 'suspend')).rejects.toMatchObject({ retryable: true, status: 409, message: expect.stringContaining('ResourceLockedConflict') });
    await settle(connector(), t, 'remove');
    expect(botsOf(t)).toHaveLength(0);
  });

  it('402 PaymentRequired and 403 QuotaExceeded are permanent, and say it is the plan', async () => {
    bp.botQuota = bp.bots.size;
    const quota = await step(connector(), tenant('bp-quota'), 'ensure').catch((e) => e);
    expect(quota).toMatchObject({ retryable: false, status: 403, message: expect.stringMatching(/QuotaExceeded.*plan limit is reached/) });
    bp.botQuota = Infinity;
    bp.paymentRequired = true;
    const payment = await step(connector(), tenant('bp-pay'), 'ensure').catch((e) => e);
    expect(payment).toMatchObject({ retryable: false, status: 402, message: expect.stringMatching(/PaymentRequired.*plan limit is reached/) });
  });

  it('a bad token is a permanent 401', async () => {
    const bad = botpressConnector({ url: bp.url, token: 'nope', workspaceId: bp.workspaceId, timeoutMs: 3_000 });
    await expect(step(bad, tenant('bp-401'), 'ensure')).rejects.toMatchObject({ retryable: false, status: 401 });
  });
});

describe('lifecycle', () => {
  it('suspend blocks the bot and resume unblocks it (updateBot `blocked`); remove deletes it; every step twice is harmless', async () => {
    const t = tenant('bp-life');
    await step(connector(), t, 'ensure');
    const bot = () => bp.bots.get(t.externalIds.bot_id);
    await step(connector(), t, 'suspend');
    await step(connector(), t, 'suspend');
    expect(bot()!.blocked).toBe(true);
    expect(t.externalIds.blocked).toBe(true);
    await step(connector(), t, 'resume');
    await step(connector(), t, 'resume');
    expect(bot()!.blocked).toBe(false);
    expect(t.externalIds.blocked).toBe(false);
    expect(await check(connector(), t)).toBe(true);
    await step(connector(), t, 'remove');
    await step(connector(), t, 'remove');
    expect(botsOf(t)).toHaveLength(0);
    expect(await check(connector(), t)).toBe(false);
  });

  it('where the token may not block bots, suspension is recorded with the reason and the bot left as it is', async () => {
    const t = tenant('bp-noblock');
    await step(connector(), t, 'ensure');
    bp.blockForbidden = true;
    await step(connector(), t, 'suspend');
    expect(t.externalIds).toMatchObject({ blocked: false, suspend_note: expect.stringContaining('403 Forbidden') });
    expect(bp.bots.get(t.externalIds.bot_id)!.blocked).toBe(false);
  });

  it('suspend blocks every bot of the tenant, a second one its tag finds too, and resume unblocks them all', async () => {
    const t = tenant('bp-two');
    await step(connector(), t, 'ensure');
    // A second bot with the tenant's tag (made by a run whose lease ran out under it).
    const made = await fetch(`${bp.url}/v1/admin/bots`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bp.token}`, 'x-workspace-id': bp.workspaceId, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'twin', tags: { tenant_id: t.tenant.id } }),
    }).then((r) => r.json());
    expect(botsOf(t)).toHaveLength(2);
    await step(connector(), t, 'suspend');
    expect(botsOf(t).map((b) => b.blocked)).toEqual([true, true]);
    expect(t.externalIds).toMatchObject({ bot_id: botsOf(t)[0].id, blocked: true });
    await step(connector(), t, 'resume');
    expect(botsOf(t).map((b) => b.blocked)).toEqual([false, false]);
    expect(bp.bots.get(made.bot.id)!.blocked).toBe(false);
  });

  it('an unblock the token is refused is a permanent error, the bot recorded blocked; a suspension recorded only resumes with no call', async () => {
    const t = tenant('bp-unblock');
    await step(connector(), t, 'ensure');
    await step(connector(), t, 'suspend');
    bp.blockForbidden = true; // the token replaced by one that may not set `blocked`
    const refused = await step(connector(), t, 'resume').catch((e) => e);
    expect(refused).toMatchObject({ retryable: false, status: 403, message: expect.stringContaining('refused to unblock') });
    expect(t.externalIds.blocked).toBe(true);
    expect(bp.bots.get(t.externalIds.bot_id)!.blocked).toBe(true);
    // ensure, which also unblocks a bot recorded blocked, says so too.
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: false, status: 403 });
    bp.blockForbidden = false;
    await step(connector(), t, 'resume');
    expect([t.externalIds.blocked, bp.bots.get(t.externalIds.bot_id)!.blocked]).toEqual([false, false]);
    // Suspended where blocking is refused: recorded only, and the resume has nothing to undo.
    bp.blockForbidden = true;
    await step(connector(), t, 'suspend');
    expect(t.externalIds).toMatchObject({ blocked: false, suspend_note: expect.stringContaining('403') });
    await step(connector(), t, 'resume');
    expect(t.externalIds).toMatchObject({ blocked: false, suspend_note: null });
  });

  it('a bot Botpress is deleting is not taken back from the list: check says it is gone, ensure makes another', async () => {
    const t = tenant('bp-deleting');
    await step(connector(), t, 'ensure');
    const dying = t.externalIds.bot_id;
    bp.deleting.add(dying);
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(t.externalIds.bot_id).not.toBe(dying);
    expect(await check(connector(), t)).toBe(true);
  });

  it('a list that names the same page again ends instead of looping', async () => {
    const t = tenant('bp-pages');
    await step(connector(), t, 'ensure');
    bp.pageSize = 1;
    bp.repeatNextToken = true;
    bp.listQueries.length = 0;
    await step(connector(), t, 'remove');
    expect(botsOf(t)).toHaveLength(0);
    expect(bp.listQueries.length).toBeLessThanOrEqual(3);
  });

  it('deleteOnSuspend deletes on suspend and makes the bot again on resume', async () => {
    const t = tenant('bp-del');
    await step(connector({ deleteOnSuspend: true }), t, 'ensure');
    await step(connector({ deleteOnSuspend: true }), t, 'suspend');
    expect(botsOf(t)).toHaveLength(0);
    await step(connector({ deleteOnSuspend: true }), t, 'resume');
    await step(connector({ deleteOnSuspend: true }), t, 'ensure');
    expect(botsOf(t)).toHaveLength(1);
  });

  it('a bot deleted at Botpress is drift: check says so, ensure makes it again', async () => {
    const t = tenant('bp-drift');
    await step(connector(), t, 'ensure');
    bp.bots.delete(t.externalIds.bot_id);
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(botsOf(t)).toHaveLength(1);
    expect(await check(connector(), t)).toBe(true);
  });
});
