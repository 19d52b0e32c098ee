// Botpress Cloud, Admin API (checked against @botpress/client 1.45.0's generated
// operations and error table): one configured workspace, one bot per tenant tagged with
// the tenant id and found again by listing with that tag (bot names are not unique). The
// tag filter is written as the official client writes it — qs with allowDots, so
// `?tags.tenant_id=…`, not `tags[tenant_id]`.
//
// Suspend and resume set the bot's `blocked` flag (updateBot, PUT /v1/admin/bots/{id});
// where the token may not set it (403 Forbidden) the suspension is recorded here with that
// reason and the bot keeps running — or, with deleteOnSuspend, the bot is deleted and made
// again on resume. Removal deletes every bot tagged with the tenant.
//
// Errors by the `type` Botpress sends (the client classifies by it, not by status):
// ResourceLockedConflict (409, a deployment holds the bot) is transient and retried;
// PaymentRequired (402), QuotaExceeded (403) and LimitExceeded (413) are the workspace's
// plan limits — permanent, with a message that says so; 5xx and 429 are retried.
//
// Not through @botpress/client itself (it does run under Deno): it is an axios client (axios, axios-retry, qs) whose
// typed errors keep neither the HTTP status nor Retry-After and whose network failures
// and timeouts surface as an unclassified error wrapping axios internals — the
// retryable/permanent split every connector needs would mean reaching into those. Five
// plain calls over fetch, written as the client writes them, stay smaller.
import { type Connector, PartnerError, partnerFetch, type ProvisionContext } from './types.ts';

export interface BotpressConfig {
  url?: string;
  token: string;
  workspaceId: string;
  deleteOnSuspend?: boolean;
  timeoutMs?: number;
}

type Bot = { id: string; name: string; tags?: Record<string, string>; status?: string };
type BotpressErrorBody = { id?: string; code?: number; type?: string; message?: string };

const PLAN_LIMITS = ['PaymentRequired', 'QuotaExceeded', 'LimitExceeded'];
const TRANSIENT = ['ResourceLockedConflict', 'RateLimited', 'OperationTimeout', 'Internal', 'Unknown'];

/** The tag filter as @botpress/client sends it: qs.stringify({tags}, {allowDots: true}). */
export function botpressTagQuery(tags: Record<string, string>): URLSearchParams {
  return new URLSearchParams(Object.entries(tags).map(([k, v]) => [`tags.${k}`, v]));
}

export function botpressConnector(config: BotpressConfig): Connector {
  const base = (config.url ?? 'https://api.botpress.cloud').replace(/\/$/, '');

  /** One Admin API call; `accept` lists statuses that are answers (e.g. 404 when probing). */
  async function call(path: string, opts: { method?: string; body?: unknown; accept?: number[] } = {}) {
    const method = opts.method ?? (opts.body === undefined ? 'GET' : 'POST');
    const res = await partnerFetch('botpress', `${base}${path}`, {
      method,
      body: opts.body,
      headers: { authorization: `Bearer ${config.token}`, 'x-workspace-id': config.workspaceId },
      timeoutMs: config.timeoutMs,
      // 4xx come back here to be classified by their type (5xx and 429 throw retryable).
      accept: [400, 401, 402, 403, 404, 405, 409, 410, 413, 415, 422],
    });
    if (res.status < 400 || opts.accept?.includes(res.status)) return res;
    const err = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as BotpressErrorBody;
    const type = err.type ?? `HTTP ${res.status}`;
    const what = `${method} ${path.split('?')[0]} → ${res.status} ${type}: ${String(err.message ?? '').slice(0, 300)}`;
    if (PLAN_LIMITS.includes(type)) {
      throw new PartnerError(
        'botpress',
        `${what} — the Botpress workspace's plan limit is reached; raise the plan or quota (or remove unused bots), then retry the service`,
        false,
        res.status,
      );
    }
    throw new PartnerError('botpress', what, TRANSIENT.includes(type), res.status);
  }

  async function findBots(ctx: ProvisionContext): Promise<Bot[]> {
    const found: Bot[] = [];
    const pages = new Set<string>(); // a page token given twice ends the walk, not loops it
    let next: string | undefined;
    do {
      const q = botpressTagQuery({ tenant_id: ctx.tenant.id });
      if (next) q.set('nextToken', next);
      const { body } = await call(`/v1/admin/bots?${q}`) as { body: { bots: Bot[]; meta?: { nextToken?: string } } };
      found.push(...body.bots.filter((b) => b.tags?.tenant_id === ctx.tenant.id));
      next = body.meta?.nextToken;
      if (next && pages.has(next)) break;
      if (next) pages.add(next);
    } while (next);
    return found;
  }

  async function getBot(id: string): Promise<Bot | undefined> {
    const { status, body } = await call(`/v1/admin/bots/${encodeURIComponent(id)}`, { accept: [404] });
    const bot = status === 200 ? (body as { bot: Bot }).bot : undefined;
    return bot && bot.status !== 'deleting' ? bot : undefined;
  }

  /** The recorded bot, else the first one its tag finds that is not being deleted: the
   *  list does not say which are (its items carry no status), so each is read, and the
   *  recorded one, gone or going, is never taken back from it. */
  async function tenantBot(ctx: ProvisionContext): Promise<Bot | undefined> {
    const id = ctx.externalIds.bot_id as string | undefined;
    const recorded = id ? await getBot(id) : undefined;
    if (recorded) return recorded;
    for (const found of await findBots(ctx)) {
      if (found.id === id) continue;
      const bot = await getBot(found.id);
      if (bot) return bot;
    }
    return undefined;
  }

  /** Every bot of the tenant: the recorded one and any its tag finds (a lost answer or an
   *  overrun lease may have made two). */
  async function tenantBotIds(ctx: ProvisionContext): Promise<string[]> {
    const ids = new Set<string>();
    if (ctx.externalIds.bot_id) ids.add(ctx.externalIds.bot_id as string);
    for (const b of await findBots(ctx)) ids.add(b.id);
    return [...ids];
  }

  async function remove(ctx: ProvisionContext) {
    for (const id of await tenantBotIds(ctx)) {
      await call(`/v1/admin/bots/${encodeURIComponent(id)}`, { method: 'DELETE', accept: [404] });
    }
  }

  /** Blocks or unblocks every bot of the tenant, as removal deletes every one: a second
   *  bot left running would serve through a whole suspension. Blocking refused for the
   *  token (403 Forbidden) is recorded with a note, the bots left running; unblocking
   *  refused is a permanent error, the record left blocked, rather than a resume said
   *  done while the bots stay blocked (the API does not report `blocked` back, so no
   *  check could find it). */
  async function setBlocked(ctx: ProvisionContext, blocked: boolean): Promise<Record<string, unknown>> {
    const ids = await tenantBotIds(ctx);
    let changed = 0;
    for (const id of ids) {
      try {
        const { status } = await call(`/v1/admin/bots/${encodeURIComponent(id)}`, {
          method: 'PUT',
          body: { blocked },
          accept: [404],
        });
        if (status !== 404) changed++; // 404: gone meanwhile, nothing to block
      } catch (err) {
        if (!(err instanceof PartnerError && err.status === 403 && /Forbidden/.test(err.message))) throw err;
        if (!blocked) {
          throw new PartnerError(
            'botpress',
            `Botpress refused to unblock bot ${id} for this token (403 Forbidden): unblock it in the Botpress dashboard ` +
              '(or use a token that may), then retry the service',
            false,
            403,
          );
        }
        return {
          blocked: changed > 0, // any blocked before the refusal are unblocked at the resume
          suspend_note: 'Botpress refused to block the bot for this token (403 Forbidden): suspension recorded only',
        };
      }
    }
    return { blocked: blocked && changed > 0, suspend_note: null };
  }

  return {
    service: 'botpress',
    async ensure(ctx) {
      let bot = await tenantBot(ctx);
      // A suspension that blocked the bot but never finished (its answer lost, the tenant
      // resumed meanwhile) left it blocked: the bot's JSON does not say, the record does.
      if (bot && ctx.externalIds.blocked === true) {
        const unblocked = await setBlocked(ctx, false);
        await ctx.checkpoint(unblocked);
      }
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
      // Recorded before the call: if its answer is lost the bot may be blocked, and an
      // ensure that follows (the tenant resumed meanwhile) unblocks it.
      await ctx.checkpoint({ blocked: true });
      return { externalIds: await setBlocked(ctx, true) };
    },
    async resume(ctx) {
      // deleteOnSuspend: ensure (which the provision task runs after resume) makes it again.
      if (config.deleteOnSuspend) return;
      // Recorded at once: the provision task keeps only ensure's result after a resume.
      // A suspension that blocked nothing (recorded only) has nothing to unblock.
      await ctx.checkpoint(ctx.externalIds.blocked === true ? await setBlocked(ctx, false) : { suspend_note: null });
    },
    remove,
    async check(ctx) {
      return (await tenantBot(ctx)) !== undefined;
    },
  };
}
