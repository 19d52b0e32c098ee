// Chatwoot (self-hosted) as it answers, from its own sources (chatwoot/chatwoot, develop,
// checked 2026-12-01; partner facts §1 and §6). Each behaviour names where it comes from:
// - Platform auth: header api_access_token; missing/bad → 401 {"error":"Invalid access_token"}
//   (app/controllers/platform_controller.rb#set_platform_app). Objects this platform app did
//   not create → 401 {"error":"Non permissible resource"} (#validate_platform_app_permissible).
// - POST /platform/api/v1/users: `User.from_email(email) || User.new(params)`, then save! —
//   an existing e-mail (matched case-insensitively) comes back UNCHANGED: the password and
//   custom_attributes sent are not applied (platform/api/v1/users_controller.rb#create).
//   PATCH …/users/{id} assigns name/display_name/email/password and merges custom_attributes
//   (#update, #user_custom_attributes). DELETE → 200 and DeleteObjectJob later (#destroy).
// - User JSON: models/_user.json.jbuilder (custom_attributes only when present; accounts[]
//   from account_users with id, name, role, active_at).
// - Accounts: create/update answer 200 with models/_account.json.jbuilder fields; update
//   is assign_attributes (custom_attributes replaced, not merged); DELETE → 200 with an
//   empty body and DeleteObjectJob.perform_later: the account reads as present until the
//   job runs (platform/api/v1/accounts_controller.rb#destroy) — `runJobs()` here.
// - Unknown ids: ActiveRecord::RecordNotFound, not rescued by PlatformController → Rails'
//   {"status":404,"error":"Not Found"}.
// - account_users: find_or_initialize_by(user_id) + update! → idempotent 200.
// - Application API (user api_access_token; AccessTokenAuthHelper): bad token → 401
//   {"error":"Invalid Access Token"}; not a member → 401 {"error":"You are not authorized
//   to access this account"} (EnsureCurrentAccountHelper); suspended account → 401
//   {"error":"Account is suspended"}; Pundit refusal (webhooks need an administrator,
//   app/policies/webhook_policy.rb) → 401 {"error":"You are not authorized to do this action"}.
// - Webhooks (api/v1/accounts/webhooks_controller.rb, app/models/webhook.rb, views
//   webhooks/{index,create,_webhook}.json.jbuilder): params.require(:webhook) — JSON bodies
//   are wrapped by ParamsWrapper, so top-level {url, subscriptions, name} works; url unique
//   per account and subscriptions from ALLOWED_WEBHOOK_EVENTS, else 422
//   {"message","attributes"}; index → {"payload":{"webhooks":[…]}}, create/update →
//   {"payload":{"webhook":{id,name,url,account_id,subscriptions,secret}}} — `secret` only
//   in versions that sign (v4.11.2+); `signing: false` plays an older server.
// - Deliveries are signed X-Chatwoot-Signature: sha256=HMAC(secret, "{ts}.{body}") with
//   X-Chatwoot-Timestamp and X-Chatwoot-Delivery (PR #13573): `delivery()` builds one.
// - 422 for an invalid record: {"message","attributes"} (RequestExceptionHandler).
// - Rate limit: rack-attack's 429 is the plain text "Retry later".
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { json, type Reply, StandIn } from './server.ts';

interface Account {
  id: number;
  name: string;
  status: string;
  custom_attributes: Record<string, unknown>;
  locale: string;
  domain: string | null;
  support_email: string | null;
  limits: Record<string, unknown>;
}
interface User {
  id: number;
  email: string;
  name: string;
  display_name: string;
  password: string;
  access_token: string;
  custom_attributes: Record<string, unknown>;
}
interface Webhook { id: number; account_id: number; url: string; name: string | null; subscriptions: string[]; secret: string }

const ALLOWED_WEBHOOK_EVENTS = [
  'conversation_status_changed', 'conversation_updated', 'conversation_created', 'contact_created', 'contact_updated',
  'message_created', 'message_updated', 'webwidget_triggered', 'inbox_created', 'inbox_updated', 'conversation_typing_on',
  'conversation_typing_off',
];
const notFound = () => json(404, { status: 404, error: 'Not Found' });
const invalid = (message: string, attributes: string[]) => json(422, { message, attributes });

export class ChatwootStandIn {
  accounts = new Map<number, Account>();
  users = new Map<number, User>();
  links: { account_id: number; user_id: number; role: string }[] = [];
  /** Fault switch: this many creates of an existing e-mail answer as if another create had
   *  saved it between Chatwoot's lookup and its save. */
  emailRaces = 0;
  webhooks: Webhook[] = [];
  messages: { id: number; account_id: number; conversation_id: string; content: string; author: number; created_at: number; incoming?: boolean }[] = [];
  /** Objects this platform app created or was linked to (platform_app_permissibles). */
  permissible = new Set<string>();
  /** DeleteObjectJob runs waiting: deletions become visible only after runJobs(). */
  pendingDeletes: { kind: 'account' | 'user'; id: number }[] = [];
  /** Addresses this Chatwoot refuses (its 422 for an invalid record). */
  invalidEmails = new Set<string>();
  /** false: a version before webhook signing (no `secret` in webhook JSON). */
  signing = true;
  private nextId = 1;
  constructor(readonly server: StandIn, public token: string) {}

  static async start(token = 'platform-token') {
    let self: ChatwootStandIn | undefined;
    const server = await StandIn.start(
      (req) => self!.handle(req.method, req.path, req.headers, req.body, req.query),
      (s) => s === 429 ? 'Retry later' : { error: 'Internal Server Error' },
      { retryAfterSeconds: null }, // rack-attack's 429 carries no Retry-After
    );
    self = new ChatwootStandIn(server, token);
    return self;
  }

  get url() {
    return this.server.url;
  }

  /** The sidekiq queue: runs every DeleteObjectJob queued so far. */
  runJobs(): void {
    for (const job of this.pendingDeletes.splice(0)) {
      if (job.kind === 'account') {
        this.accounts.delete(job.id);
        this.links = this.links.filter((l) => l.account_id !== job.id);
        this.webhooks = this.webhooks.filter((w) => w.account_id !== job.id);
      } else {
        this.users.delete(job.id);
        this.links = this.links.filter((l) => l.user_id !== job.id);
      }
    }
  }

  /** A user that signed up by themselves (not through this platform app). */
  addForeignUser(email: string, password = 'Own-Passw0rd!'): User {
    const user: User = { id: this.nextId++, email, name: email, display_name: email, password, access_token: `ut_${randomBytes(6).toString('hex')}`, custom_attributes: {} };
    this.users.set(user.id, user);
    return user;
  }

  userByEmail(email: string): User | undefined {
    return [...this.users.values()].find((u) => u.email.toLowerCase() === email.toLowerCase());
  }

  /** What Chatwoot would POST to a webhook for `payload` (signed where it has a secret). */
  delivery(webhook: Webhook, payload: unknown) {
    const body = JSON.stringify(payload);
    const ts = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = { 'x-chatwoot-delivery': randomUUID() };
    if (this.signing) {
      headers['x-chatwoot-timestamp'] = String(ts);
      headers['x-chatwoot-signature'] = `sha256=${createHmac('sha256', webhook.secret).update(`${ts}.${body}`).digest('hex')}`;
    }
    return { url: webhook.url, headers, body };
  }

  private userJson(u: User) {
    const account = this.links.find((l) => l.user_id === u.id);
    return {
      access_token: u.access_token, account_id: account?.account_id ?? null, available_name: u.display_name || u.name,
      avatar_url: '', confirmed: true, display_name: u.display_name, message_signature: null, email: u.email,
      phone_number: null, id: u.id, name: u.name, provider: 'email', pubsub_token: `pub_${u.id}`,
      ...(Object.keys(u.custom_attributes).length ? { custom_attributes: u.custom_attributes } : {}),
      role: account?.role ?? null, ui_settings: {}, uid: u.email,
      accounts: this.links.filter((l) => l.user_id === u.id).map((l) => ({ id: l.account_id, name: this.accounts.get(l.account_id)?.name, active_at: null, role: l.role })),
    };
  }

  private accountJson(a: Account) {
    const { id, name, locale, domain, support_email, custom_attributes, limits, status } = a;
    return { id, name, locale, domain, support_email, enabled_features: {}, custom_attributes, limits, status };
  }

  private messageJson(m: ChatwootStandIn['messages'][number]) {
    const author = [...this.users.values()].find((u) => u.id === m.author);
    return {
      id: m.id, content: m.content, account_id: m.account_id, conversation_id: m.conversation_id, message_type: m.incoming ? 0 : 1,
      content_type: 'text', private: false, created_at: m.created_at, source_id: null,
      sender: m.incoming ? { id: 1, name: 'Contact', type: 'contact' } : author ? { id: author.id, name: author.name, type: 'user' } : null,
    };
  }

  private webhookJson(w: Webhook) {
    const { secret, ...rest } = w;
    return this.signing ? { ...rest, secret } : rest;
  }

  /** A contact writing in the conversation (the widget): an incoming message. */
  contactMessage(accountId: number, conversationId: string, content: string) {
    this.messages.push({ id: this.nextId++, account_id: accountId, conversation_id: conversationId, content, author: 0, created_at: Math.floor(Date.now() / 1000), incoming: true });
  }

  private applicationApi(method: string, path: string, headers: Record<string, unknown>, body: any, query: URLSearchParams): Reply | undefined {
    const m = path.match(/^\/api\/v1\/accounts\/(\d+)(\/.*)$/);
    if (!m) return undefined;
    const user = [...this.users.values()].find((u) => u.access_token === headers['api_access_token']);
    if (!user) return json(401, { error: 'Invalid Access Token' });
    const account = this.accounts.get(Number(m[1]));
    if (!account) return json(404, { error: 'Resource could not be found' });
    // Chatwoot's EnsureCurrentAccountHelper: a suspended account first, then membership.
    if (account.status !== 'active') return json(401, { error: 'Account is suspended' });
    const link = this.links.find((l) => l.user_id === user.id && l.account_id === account.id);
    if (!link) return json(401, { error: 'You are not authorized to access this account' });
    const rest = m[2];
    let w;
    if ((w = rest.match(/^\/conversations\/([^/]+)\/messages$/)) && method === 'POST') {
      const msg = {
        id: this.nextId++, account_id: account.id, conversation_id: decodeURIComponent(w[1]), content: body.content, author: user.id,
        created_at: Math.floor(Date.now() / 1000),
      };
      this.messages.push(msg);
      return json(200, this.messageJson(msg));
    }
    // messages#index: the conversation's latest 20, oldest first (MessageFinder), or with
    // `before` the 20 whose ids come just before it, as the message partial renders them:
    // message_type as its integer, created_at in seconds.
    if ((w = rest.match(/^\/conversations\/([^/]+)\/messages$/)) && method === 'GET') {
      const conversation = decodeURIComponent(w[1]);
      const before = query.has('before') ? Number(query.get('before')) : Infinity;
      const mine = this.messages.filter((m) => m.account_id === account.id && m.conversation_id === conversation && m.id < before).slice(-20);
      return json(200, { meta: {}, payload: mine.map((m) => this.messageJson(m)) });
    }
    if (rest === '/webhooks' || (w = rest.match(/^\/webhooks\/(\d+)$/))) {
      if (link.role !== 'administrator') return json(401, { error: 'You are not authorized to do this action' });
      const params = body?.webhook ?? body ?? {}; // ParamsWrapper
      if (rest === '/webhooks' && method === 'GET') {
        return json(200, { payload: { webhooks: this.webhooks.filter((x) => x.account_id === account.id).map((x) => this.webhookJson(x)) } });
      }
      const validate = (url: string, subscriptions: unknown, self?: Webhook) => {
        if (!/^https?:\/\/\S+$/.test(url ?? '')) return invalid('Url is invalid', ['url']);
        if (this.webhooks.some((x) => x !== self && x.account_id === account.id && x.url === url)) return invalid('Url has already been taken', ['url']);
        if (!Array.isArray(subscriptions) || !subscriptions.length || subscriptions.some((s) => !ALLOWED_WEBHOOK_EVENTS.includes(s))) {
          return invalid('Subscriptions Invalid events', ['subscriptions']);
        }
        return undefined;
      };
      if (rest === '/webhooks' && method === 'POST') {
        const refused = validate(params.url, params.subscriptions);
        if (refused) return refused;
        const hook: Webhook = { id: this.nextId++, account_id: account.id, url: params.url, name: params.name ?? null, subscriptions: params.subscriptions, secret: randomBytes(24).toString('base64url') };
        this.webhooks.push(hook);
        return json(200, { payload: { webhook: this.webhookJson(hook) } });
      }
      const hook = w && this.webhooks.find((x) => x.account_id === account.id && x.id === Number(w![1]));
      if (!hook) return json(404, { error: 'Resource could not be found' });
      if (method === 'PATCH' || method === 'PUT') {
        const next = { ...hook, ...Object.fromEntries(Object.entries(params).filter(([k]) => ['url', 'name', 'subscriptions'].includes(k))) };
        const refused = validate(next.url, next.subscriptions, hook);
        if (refused) return refused;
        Object.assign(hook, next);
        return json(200, { payload: { webhook: this.webhookJson(hook) } });
      }
      if (method === 'DELETE') {
        this.webhooks = this.webhooks.filter((x) => x !== hook);
        return json(200);
      }
    }
    return notFound();
  }

  handle(method: string, path: string, headers: Record<string, unknown>, body: any, query = new URLSearchParams()): Reply {
    const app = this.applicationApi(method, path, headers, body, query);
    if (app) return app;
    let m;
    if (headers['api_access_token'] !== this.token) return json(401, { error: 'Invalid access_token' });
    const guard = (kind: string, id: number) => (this.permissible.has(`${kind}:${id}`) ? undefined : json(401, { error: 'Non permissible resource' }));
    if (method === 'POST' && path === '/platform/api/v1/users') {
      if (!/^[^@\s]+@[^@\s]+$/.test(body?.email ?? '') || this.invalidEmails.has(body.email)) {
        return invalid('Email is invalid', ['email']);
      }
      // User.from_email(email) || User.new(user_params): an existing user is returned as is.
      let user = this.userByEmail(body.email);
      // A concurrent create of the same e-mail saved between the lookup and this save: the
      // uniqueness validation refuses it (RecordInvalid → 422 with the attribute).
      if (user && this.emailRaces > 0) {
        this.emailRaces--;
        return invalid('Email has already been taken', ['email']);
      }
      if (!user) {
        if (!body.password) return invalid("Password can't be blank", ['password']);
        user = {
          id: this.nextId++, email: body.email.toLowerCase(), name: body.name, display_name: body.display_name ?? '', password: body.password,
          access_token: `ut_${randomBytes(6).toString('hex')}`, custom_attributes: body.custom_attributes ?? {},
        };
        this.users.set(user.id, user);
      }
      this.permissible.add(`user:${user.id}`);
      return json(200, this.userJson(user));
    }
    if ((m = path.match(/^\/platform\/api\/v1\/users\/(\d+)$/))) {
      const user = this.users.get(Number(m[1]));
      if (!user) return notFound();
      const refused = guard('user', user.id);
      if (refused) return refused;
      if (method === 'GET') return json(200, this.userJson(user));
      if (method === 'PATCH' || method === 'PUT') {
        for (const k of ['name', 'display_name', 'email', 'password'] as const) if (body?.[k] !== undefined) user[k] = body[k];
        if (body?.custom_attributes) user.custom_attributes = { ...user.custom_attributes, ...body.custom_attributes };
        return json(200, this.userJson(user));
      }
      if (method === 'DELETE') {
        this.pendingDeletes.push({ kind: 'user', id: user.id });
        return json(200);
      }
    }
    if (method === 'POST' && path === '/platform/api/v1/accounts') {
      if (!body?.name) return invalid("Name can't be blank", ['name']);
      const account: Account = {
        id: this.nextId++, name: body.name, status: body.status ?? 'active', custom_attributes: body.custom_attributes ?? {},
        locale: body.locale ?? 'en', domain: body.domain ?? null, support_email: body.support_email ?? null, limits: body.limits ?? {},
      };
      this.accounts.set(account.id, account);
      this.permissible.add(`account:${account.id}`);
      return json(200, this.accountJson(account));
    }
    if ((m = path.match(/^\/platform\/api\/v1\/accounts\/(\d+)$/))) {
      const account = this.accounts.get(Number(m[1]));
      if (!account) return notFound();
      const refused = guard('account', account.id);
      if (refused) return refused;
      if (method === 'GET') return json(200, this.accountJson(account));
      if (method === 'PATCH' || method === 'PUT') {
        for (const k of ['name', 'locale', 'domain', 'support_email', 'status', 'limits', 'custom_attributes'] as const) {
          if (body?.[k] !== undefined) (account as any)[k] = body[k];
        }
        return json(200, this.accountJson(account));
      }
      if (method === 'DELETE') {
        this.pendingDeletes.push({ kind: 'account', id: account.id });
        return json(200);
      }
    }
    if ((m = path.match(/^\/platform\/api\/v1\/accounts\/(\d+)\/account_users$/))) {
      const accountId = Number(m[1]);
      if (!this.accounts.has(accountId)) return notFound();
      const refused = guard('account', accountId);
      if (refused) return refused;
      if (method === 'GET') return json(200, this.links.filter((l) => l.account_id === accountId));
      if (method === 'POST') {
        if (!this.users.has(body.user_id)) return notFound();
        let link = this.links.find((l) => l.account_id === accountId && l.user_id === body.user_id);
        if (!link) this.links.push((link = { account_id: accountId, user_id: body.user_id, role: body.role }));
        else link.role = body.role ?? link.role;
        return json(200, link);
      }
      if (method === 'DELETE') {
        this.links = this.links.filter((l) => !(l.account_id === accountId && l.user_id === body?.user_id));
        return json(200);
      }
    }
    return notFound();
  }
}
