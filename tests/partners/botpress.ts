// Botpress Cloud's Admin API as the connector uses it: Bearer token, x-workspace-id,
// bots listed with a tags filter (tags[key]=value), created with {bot:{…}}, errors as
// {id, code, type, message} (Unauthorized 401, ResourceNotFound 404, InvalidPayload 400).
import { json, type Reply, StandIn } from './server.ts';

interface Bot { id: string; name: string; tags: Record<string, string>; workspace: string; createdAt: string }
const error = (code: number, type: string, message: string) => ({ id: `err_${Date.now()}`, code, type, message });

export class BotpressStandIn {
  bots = new Map<string, Bot>();
  private n = 0;
  constructor(readonly server: StandIn, public token: string, readonly workspaceId: string) {}

  static async start(token = 'pat-token', workspaceId = 'wkspace_1') {
    let self: BotpressStandIn | undefined;
    const server = await StandIn.start((req) => self!.handle(req.method, req.path, req.query, req.headers, req.body), (s) =>
      s === 429 ? error(429, 'RateLimited', 'Too many requests') : error(s, 'Internal', 'Internal error'));
    self = new BotpressStandIn(server, token, workspaceId);
    return self;
  }

  get url() {
    return this.server.url;
  }

  handle(method: string, path: string, query: URLSearchParams, headers: Record<string, unknown>, body: any): Reply {
    if (headers.authorization !== `Bearer ${this.token}`) return json(401, error(401, 'Unauthorized', 'Invalid token'));
    if (headers['x-workspace-id'] !== this.workspaceId) return json(403, error(403, 'Forbidden', 'Unknown workspace'));
    if (path === '/v1/admin/bots' && method === 'GET') {
      const tags = [...query.entries()].filter(([k]) => k.startsWith('tags[')).map(([k, v]) => [k.slice(5, -1), v]);
      const bots = [...this.bots.values()].filter((b) => tags.every(([k, v]) => b.tags[k] === v));
      return json(200, { bots: bots.map(({ workspace: _w, ...b }) => b), meta: {} });
    }
    if (path === '/v1/admin/bots' && method === 'POST') {
      if (body?.tags && typeof body.tags !== 'object') return json(400, error(400, 'InvalidPayload', 'tags must be an object'));
      const bot: Bot = { id: `bot_${++this.n}`, name: body?.name ?? `bot-${this.n}`, tags: body?.tags ?? {}, workspace: this.workspaceId, createdAt: new Date().toISOString() };
      this.bots.set(bot.id, bot);
      return json(200, { bot: { ...bot, signingSecret: 'sec', status: 'active' } });
    }
    const m = path.match(/^\/v1\/admin\/bots\/([^/]+)$/);
    if (m) {
      const bot = this.bots.get(m[1]);
      if (!bot) return json(404, error(404, 'ResourceNotFound', `Bot ${m[1]} not found`));
      if (method === 'GET') return json(200, { bot });
      if (method === 'DELETE') {
        this.bots.delete(bot.id);
        return json(200, {});
      }
    }
    return json(404, error(404, 'ResourceNotFound', 'Not found'));
  }
}
