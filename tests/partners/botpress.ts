// Botpress Cloud's Admin API as it answers, from @botpress/client 1.45.0 (the generated
// operations and error classes in dist/index.mjs/index.d.ts, partner facts §4 and §6):
// - Headers: Authorization: Bearer <PAT> and x-workspace-id (client config).
// - listBots (GET /v1/admin/bots): the client writes its query with
//   qs.stringify(query, {encode: true, arrayFormat: 'repeat', allowDots: true}), so a tag
//   filter arrives as `tags.tenant_id=…` — the only form read here (any other parameter is
//   ignored, as an unknown one would be); pages with `nextToken` and meta.nextToken.
//   Response {bots:[{id,createdAt,updatedAt,name,deployedAt?,tags,type}], meta:{nextToken?}}.
// - createBot (POST) / getBot / updateBot (PUT, body has `blocked?: boolean`, which the bot
//   JSON does not report back) answer {bot:{…}}; deleteBot answers {}.
// - Errors are {id, code, type, message}: the client classifies by `type` (its error table):
//   Unauthorized 401, Forbidden 403, QuotaExceeded 403 ("Quotas are a soft limit that can be
//   increased"), PaymentRequired 402, ResourceNotFound 404, InvalidPayload 400,
//   ResourceLockedConflict 409 ("locked and cannot be operated on until the lock is
//   released"), RateLimited 429, Internal 500. Whether 429 carries Retry-After is unconfirmed.
import { json, type Reply, StandIn } from './server.ts';

interface Bot { id: string; name: string; tags: Record<string, string>; workspace: string; createdAt: string; updatedAt: string; blocked: boolean }
const error = (code: number, type: string, message: string) => ({ id: `err_${Date.now()}`, code, type, message });

export class BotpressStandIn {
  bots = new Map<string, Bot>();
  /** Raw query strings of the listBots calls, as sent. */
  listQueries: string[] = [];
  pageSize = 20;
  /** Bots this workspace's plan allows (createBot beyond it: 403 QuotaExceeded). */
  botQuota = Infinity;
  /** The workspace's payment failed: writes answer 402 PaymentRequired. */
  paymentRequired = false;
  /** Bots locked by a running deployment: updates and deletes answer 409 ResourceLockedConflict (n times). */
  locked = new Map<string, number>();
  /** The token may not set `blocked` (403 Forbidden). */
  blockForbidden = false;
  /** Bots being deleted (Botpress deletes asynchronously): getBot says `status: 'deleting'`,
   *  the list, whose items carry no status, still has them. */
  deleting = new Set<string>();
  /** A faulty list: every page names the same nextToken. */
  repeatNextToken = false;
  private n = 0;
  constructor(readonly server: StandIn, public token: string, readonly workspaceId: string) {}

  static async start(token = 'pat-token', workspaceId = 'wkspace_1') {
    let self: BotpressStandIn | undefined;
    const server = await StandIn.start((req) => self!.handle(req.method, req.path, req.query, req.headers, req.body), (s) =>
      s === 429 ? error(429, 'RateLimited', 'The request has been rate limited.') : error(s, 'Internal', 'An internal error occurred'));
    self = new BotpressStandIn(server, token, workspaceId);
    return self;
  }

  get url() {
    return this.server.url;
  }

  private botJson({ workspace: _w, blocked: _b, ...b }: Bot) {
    return { ...b, signingSecret: 'sec', status: this.deleting.has(b.id) ? 'deleting' : 'active', dev: false, alwaysAlive: false, integrations: {}, type: 'studio' };
  }

  handle(method: string, path: string, query: URLSearchParams, headers: Record<string, unknown>, body: any): Reply {
    if (headers.authorization !== `Bearer ${this.token}`) return json(401, error(401, 'Unauthorized', 'The request requires to be authenticated.'));
    if (headers['x-workspace-id'] !== this.workspaceId) return json(403, error(403, 'Forbidden', "The requested action can't be peform by this resource."));
    if (path === '/v1/admin/bots' && method === 'GET') {
      this.listQueries.push(query.toString());
      const tags = [...query.entries()].filter(([k]) => k.startsWith('tags.')).map(([k, v]) => [k.slice(5), v]);
      const all = [...this.bots.values()].filter((b) => tags.every(([k, v]) => b.tags[k] === v));
      const start = Number(query.get('nextToken') ?? 0);
      const page = all.slice(start, start + this.pageSize);
      const next = this.repeatNextToken ? String(this.pageSize) : start + this.pageSize < all.length ? String(start + this.pageSize) : undefined;
      return json(200, { bots: page.map((b) => ({ id: b.id, createdAt: b.createdAt, updatedAt: b.updatedAt, name: b.name, tags: b.tags, type: 'studio' })), meta: next ? { nextToken: next } : {} });
    }
    if (path === '/v1/admin/bots' && method === 'POST') {
      if (this.paymentRequired) return json(402, error(402, 'PaymentRequired', 'A payment is required to perform this request.'));
      if (this.bots.size >= this.botQuota) {
        return json(403, error(403, 'QuotaExceeded', `The bot quota of this workspace (${this.botQuota}) is reached.`));
      }
      if (body?.tags && typeof body.tags !== 'object') return json(400, error(400, 'InvalidPayload', 'The request payload is invalid.'));
      const now = new Date().toISOString();
      const bot: Bot = { id: `bot_${++this.n}`, name: body?.name ?? `bot-${this.n}`, tags: body?.tags ?? {}, workspace: this.workspaceId, createdAt: now, updatedAt: now, blocked: false };
      this.bots.set(bot.id, bot);
      return json(200, { bot: this.botJson(bot) });
    }
    const m = path.match(/^\/v1\/admin\/bots\/([^/]+)$/);
    if (m) {
      const bot = this.bots.get(m[1]);
      if (!bot) return json(404, error(404, 'ResourceNotFound', `Bot ${m[1]} not found`));
      if (method === 'GET') return json(200, { bot: this.botJson(bot) });
      const locks = this.locked.get(bot.id) ?? 0;
      if (locks > 0 && (method === 'PUT' || method === 'DELETE')) {
        this.locked.set(bot.id, locks - 1);
        return json(409, error(409, 'ResourceLockedConflict', 'The resource is current locked and cannot be operated on until the lock is released.'));
      }
      if (method === 'PUT') {
        if (this.paymentRequired) return json(402, error(402, 'PaymentRequired', 'A payment is required to perform this request.'));
        if (body?.blocked !== undefined) {
          if (this.blockForbidden) return json(403, error(403, 'Forbidden', "The requested action can't be peform by this resource."));
          bot.blocked = Boolean(body.blocked);
        }
        if (body?.tags) {
          for (const [k, v] of Object.entries(body.tags as Record<string, string | null>)) v === null || v === '' ? delete bot.tags[k] : (bot.tags[k] = v);
        }
        bot.updatedAt = new Date().toISOString();
        return json(200, { bot: this.botJson(bot) });
      }
      if (method === 'DELETE') {
        this.bots.delete(bot.id);
        return json(200, {});
      }
    }
    return json(404, error(404, 'ResourceNotFound', 'The requested resource does not exist.'));
  }
}
