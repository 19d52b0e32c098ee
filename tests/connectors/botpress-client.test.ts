// The Botpress stand-in and connector held against the official client, @botpress/client
// 1.45.0 (a devDependency, for this test only): the client's requests are what the
// stand-in reads, its typed errors come out of the stand-in's answers, and the connector
// sends the same tag filter the client sends.
import { Client, isApiError } from '@botpress/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { botpressConnector } from '../../shared/connectors/botpress.ts';
import { BotpressStandIn } from '../partners/botpress.ts';
import { step, tenant } from './harness.ts';

let bp: BotpressStandIn;
let client: Client;

beforeAll(async () => {
  bp = await BotpressStandIn.start();
  client = new Client({ token: bp.token, workspaceId: bp.workspaceId, apiUrl: bp.url, retry: { retries: 0 } });
});
afterAll(() => bp.server.close());

const typeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e) => (isApiError(e) ? e.type : `not an API error: ${e}`));

describe('@botpress/client against the stand-in', () => {
  it('creates, lists by tag, blocks and deletes; the connector lists with the very query the client writes', async () => {
    const t = tenant('bpc-1');
    const { bot } = await client.createBot({ name: 'x', tags: { tenant_id: t.tenant.id } });
    const listed = await client.listBots({ tags: { tenant_id: t.tenant.id } });
    expect(listed.bots.map((b) => b.id)).toEqual([bot.id]);
    const clientQuery = bp.listQueries.at(-1);
    await step(botpressConnector({ url: bp.url, token: bp.token, workspaceId: bp.workspaceId }), t, 'ensure');
    expect(t.externalIds.bot_id).toBe(bot.id); // found, not made again
    expect(bp.listQueries.at(-1)).toBe(clientQuery);
    await client.updateBot({ id: bot.id, blocked: true });
    expect(bp.bots.get(bot.id)!.blocked).toBe(true);
    await client.deleteBot({ id: bot.id });
    expect(await typeOf(client.getBot({ id: bot.id }))).toBe('ResourceNotFound');
  });

  it("the stand-in's errors are the client's typed errors", async () => {
    const { bot } = await client.createBot({ name: 'y', tags: {} });
    bp.locked.set(bot.id, 1);
    expect(await typeOf(client.updateBot({ id: bot.id, blocked: true }))).toBe('ResourceLockedConflict');
    bp.botQuota = bp.bots.size;
    expect(await typeOf(client.createBot({ name: 'z' }))).toBe('QuotaExceeded');
    bp.botQuota = Infinity;
    bp.paymentRequired = true;
    expect(await typeOf(client.createBot({ name: 'z' }))).toBe('PaymentRequired');
    bp.paymentRequired = false;
    const stranger = new Client({ token: 'nope', workspaceId: bp.workspaceId, apiUrl: bp.url, retry: { retries: 0 } });
    expect(await typeOf(stranger.listBots({}))).toBe('Unauthorized');
    bp.server.faults.rateLimit = 1;
    expect(await typeOf(client.listBots({}))).toBe('RateLimited');
  });
});
