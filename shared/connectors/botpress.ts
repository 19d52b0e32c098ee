// Botpress Cloud, Admin API: one configured workspace, one bot per tenant tagged with
// the tenant id and found again by listing with that tag (bot names are not unique).
// Botpress has no suspend call: suspension is recorded here and the bot keeps running,
// unless deleteOnSuspend says to remove it.
import { type Connector, partnerFetch, type ProvisionContext } from './types.ts';

export interface BotpressConfig {
  url?: string;
  token: string;
  workspaceId: string;
  deleteOnSuspend?: boolean;
  timeoutMs?: number;
}

type Bot = { id: string; name: string; tags?: Record<string, string> };

export function botpressConnector(config: BotpressConfig): Connector {
  const base = (config.url ?? 'https://api.botpress.cloud').replace(/\/$/, '');
  const call = (path: string, opts: { method?: string; body?: unknown; accept?: number[] } = {}) =>
    partnerFetch('botpress', `${base}${path}`, {
      ...opts,
      headers: { authorization: `Bearer ${config.token}`, 'x-workspace-id': config.workspaceId },
      timeoutMs: config.timeoutMs,
    });

  async function findBot(ctx: ProvisionContext): Promise<Bot | undefined> {
    let next: string | undefined;
    do {
      const q = new URLSearchParams({ 'tags[tenant_id]': ctx.tenant.id });
      if (next) q.set('nextToken', next);
      const { body } = await call(`/v1/admin/bots?${q}`) as {
        body: { bots: Bot[]; meta?: { nextToken?: string } };
      };
      const bot = body.bots.find((b) => b.tags?.tenant_id === ctx.tenant.id);
      if (bot) return bot;
      next = body.meta?.nextToken;
    } while (next);
    return undefined;
  }

  async function remove(ctx: ProvisionContext) {
    const id = (ctx.externalIds.bot_id as string | undefined) ?? (await findBot(ctx))?.id;
    if (id) await call(`/v1/admin/bots/${id}`, { method: 'DELETE', accept: [404] });
  }

  return {
    service: 'botpress',
    async ensure(ctx) {
      let bot = await findBot(ctx);
      if (!bot) {
        const { body } = await call('/v1/admin/bots', {
          method: 'POST',
          body: {
            name: `${ctx.tenant.slug}-assistant`,
            tags: { tenant_id: ctx.tenant.id, tenant_slug: ctx.tenant.slug },
          },
        }) as { body: { bot: Bot } };
        bot = body.bot;
      }
      return { externalIds: { bot_id: bot.id, workspace_id: config.workspaceId } };
    },
    async suspend(ctx) {
      if (config.deleteOnSuspend) {
        await remove(ctx);
        return { externalIds: { bot_id: null } };
      }
    },
    async resume(ctx) {
      return config.deleteOnSuspend ? await this.ensure(ctx) : undefined;
    },
    remove,
    async check(ctx) {
      return (await findBot(ctx)) !== undefined;
    },
  };
}
