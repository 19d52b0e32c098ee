// Chatwoot's Platform API as the connector uses it (self-hosted; swagger + controllers):
// api_access_token auth (401 {"error":"Invalid access_token"}), users find-or-create by
// e-mail, accounts without a list call, account_users find_or_initialize, creates
// answering 200, 422 {"message","attributes"} for invalid records.
import { json, type Reply, StandIn } from './server.ts';

interface Account { id: number; name: string; status: string; custom_attributes: Record<string, unknown> }
interface User { id: number; email: string; name: string; password: string; access_token: string; custom_attributes: Record<string, unknown> }

export class ChatwootStandIn {
  accounts = new Map<number, Account>();
  users = new Map<number, User>();
  links: { account_id: number; user_id: number; role: string }[] = [];
  messages: { id: number; account_id: number; conversation_id: string; content: string; author: number }[] = [];
  /** Addresses this Chatwoot refuses (its 422 for an invalid record). */
  invalidEmails = new Set<string>();
  private nextId = 1;
  constructor(readonly server: StandIn, public token: string) {}

  static async start(token = 'platform-token') {
    let self: ChatwootStandIn | undefined;
    const server = await StandIn.start((req) => self!.handle(req.method, req.path, req.headers, req.body), (s) =>
      s === 429 ? 'Retry later' : { error: 'Internal Server Error' });
    self = new ChatwootStandIn(server, token);
    return self;
  }

  get url() {
    return this.server.url;
  }

  private userJson(u: User) {
    return {
      id: u.id, email: u.email, name: u.name, display_name: u.name, access_token: u.access_token, uid: u.email,
      confirmed: true, custom_attributes: u.custom_attributes,
      accounts: this.links.filter((l) => l.user_id === u.id).map((l) => ({ id: l.account_id, name: this.accounts.get(l.account_id)?.name, role: l.role })),
    };
  }

  handle(method: string, path: string, headers: Record<string, unknown>, body: any): Reply {
    let m;
    // Application API: a user's token.
    if ((m = path.match(/^\/api\/v1\/accounts\/(\d+)\/conversations\/([^/]+)\/messages$/)) && method === 'POST') {
      const user = [...this.users.values()].find((u) => u.access_token === headers['api_access_token']);
      if (!user) return json(401, { error: 'Invalid access_token' });
      if (!this.links.some((l) => l.user_id === user.id && l.account_id === Number(m![1]))) return json(401, { error: 'Non permissible resource' });
      const msg = { id: this.nextId++, account_id: Number(m[1]), conversation_id: decodeURIComponent(m[2]), content: body.content, author: user.id };
      this.messages.push(msg);
      return json(200, { ...msg, message_type: 1, private: false });
    }
    if (headers['api_access_token'] !== this.token) return json(401, { error: 'Invalid access_token' });
    if (method === 'POST' && path === '/platform/api/v1/users') {
      if (!/^[^@\s]+@[^@\s]+$/.test(body?.email ?? '') || this.invalidEmails.has(body.email)) {
        return json(422, { message: 'Email is invalid', attributes: ['email'] });
      }
      let user = [...this.users.values()].find((u) => u.email === body.email);
      if (!user) {
        user = { id: this.nextId++, email: body.email, name: body.name, password: body.password, access_token: `ut_${this.nextId}`, custom_attributes: body.custom_attributes ?? {} };
        this.users.set(user.id, user);
      } else {
        Object.assign(user, { name: body.name ?? user.name, password: body.password ?? user.password });
      }
      return json(200, this.userJson(user));
    }
    if ((m = path.match(/^\/platform\/api\/v1\/users\/(\d+)$/))) {
      const user = this.users.get(Number(m[1]));
      if (!user) return json(404, { status: 404, error: 'Not Found' });
      if (method === 'GET') return json(200, this.userJson(user));
      if (method === 'DELETE') {
        this.users.delete(user.id);
        return json(200);
      }
    }
    if (method === 'POST' && path === '/platform/api/v1/accounts') {
      const account: Account = { id: this.nextId++, name: body.name, status: body.status ?? 'active', custom_attributes: body.custom_attributes ?? {} };
      this.accounts.set(account.id, account);
      return json(200, account);
    }
    if ((m = path.match(/^\/platform\/api\/v1\/accounts\/(\d+)$/))) {
      const account = this.accounts.get(Number(m[1]));
      if (!account) return json(404, { status: 404, error: 'Not Found' });
      if (method === 'GET') return json(200, account);
      if (method === 'PATCH') {
        Object.assign(account, body);
        return json(200, account);
      }
      if (method === 'DELETE') {
        this.accounts.delete(account.id);
        this.links = this.links.filter((l) => l.account_id !== account.id);
        return json(200);
      }
    }
    if ((m = path.match(/^\/platform\/api\/v1\/accounts\/(\d+)\/account_users$/)) && method === 'POST') {
      const accountId = Number(m[1]);
      if (!this.accounts.has(accountId) || !this.users.has(body.user_id)) return json(404, { status: 404, error: 'Not Found' });
      let link = this.links.find((l) => l.account_id === accountId && l.user_id === body.user_id);
      if (!link) this.links.push((link = { account_id: accountId, user_id: body.user_id, role: body.role }));
      return json(200, link);
    }
    return json(404, { status: 404, error: 'Not Found' });
  }
}
