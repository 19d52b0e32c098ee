// n8n's Public API v1 as the connector uses it, answering what the real n8n 2.8.4
// answered (recorded with `npm run test:n8n`'s server, SQLite, 2026-12-01; projects mode
// with n8n's own E2E licence switch, E2E_TESTS=true + PATCH /rest/e2e/feature). Each
// answer below names its source: [2.8.4] recorded from the real server, [2.8.4 E2E
// licence] recorded with the licence switched on, [doc] from partner-apis.md §2 only.
import { randomBytes } from 'node:crypto';
import { json, type Reply, StandIn } from './server.ts';

interface User { id: string; email: string; role: string; isPending: boolean; createdAt: string }
const LICENCE = 'Your license does not allow for feat:projectRole:admin. To enable feat:projectRole:admin, please upgrade to a license that supports this feature.';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^@\s]+@[^@\s]+$/;

/** [2.8.4] A page as n8n's lists answer it, {data, nextCursor}: the cursor is base64 of
 *  {limit, offset}. */
function page<T>(all: T[], query: URLSearchParams): { data: T[]; nextCursor: string | null } {
  const cursor = query.get('cursor');
  const { offset } = cursor ? JSON.parse(Buffer.from(cursor, 'base64').toString()) as { offset: number } : { offset: 0 };
  const limit = Number(query.get('limit') ?? 100);
  const next = offset + limit < all.length ? Buffer.from(JSON.stringify({ limit, offset: offset + limit })).toString('base64') : null;
  return { data: all.slice(offset, offset + limit), nextCursor: next };
}

export class N8nStandIn {
  users = new Map<string, User>();
  /** Team projects (personal projects are derived from the users, as n8n lists them). */
  projects = new Map<string, { id: string; name: string; type: 'team'; members: Map<string, string> }>();
  licensed = false;
  /** A licence with a user quota: GET /users and /users/{id} need an unlimited one. */
  usersLimited = false;
  /** The instance's mail: none set up (the recorded server: a link in the answer), set up
   *  (each invitation e-mailed, no link), or set up and failing (no e-mail; the link, and
   *  the mailer's error, in the answer). */
  mail: 'none' | 'sends' | 'fails' = 'none';
  /** The invitations e-mailed, by address, in order. */
  readonly mailed: string[] = [];
  /** Workflows, by id, with the project that holds them (a tenant's automations). */
  workflows = new Map<string, { id: string; name: string; active: boolean; projectId: string }>();
  readonly ownerId: string;
  private n = 0;
  constructor(readonly server: StandIn, public apiKey: string) {
    this.ownerId = this.uuid();
    this.users.set(this.ownerId, { id: this.ownerId, email: 'owner@n8n.test', role: 'global:owner', isPending: false, createdAt: new Date().toISOString() });
  }

  static async start(apiKey = 'n8n-key') {
    let self: N8nStandIn | undefined;
    const server = await StandIn.start((req) => self!.handle(req.method, req.path, req.query, req.headers, req.body), (s) =>
      ({ message: s === 429 ? 'Too many requests' : 'Internal server error' }));
    self = new N8nStandIn(server, apiKey);
    return self;
  }

  get url() {
    return this.server.url;
  }

  private uuid() {
    return `00000000-0000-4000-8000-${String(++this.n).padStart(12, '0')}`;
  }

  /** The invitee signs up through the link ([2.8.4] POST /rest/invitations/{id}/accept). */
  accept(email: string) {
    const user = [...this.users.values()].find((u) => u.email === email);
    if (user) user.isPending = false;
  }

  /** What GET /rest/resolve-signup-token answers for the link: 200 while the invitation is
   *  pending, 400 "The invitation was likely either deleted or already claimed" [2.8.4]. */
  invitationValid(inviteUrl: string): boolean {
    const id = new URL(inviteUrl).searchParams.get('inviteeId');
    return Boolean(id && this.users.get(id)?.isPending);
  }

  private publicUser(u: User, withRole: boolean) {
    // [2.8.4] GET /users/{id}: {id,email,firstName,lastName,createdAt,updatedAt,isPending}, role with includeRole=true
    return { id: u.id, email: u.email, firstName: null, lastName: null, createdAt: u.createdAt, updatedAt: u.createdAt, isPending: u.isPending, ...(withRole ? { role: u.role } : {}) };
  }

  private allProjects() {
    // [2.8.4] GET /projects lists personal projects ("<email>", type personal) with the team ones.
    const personal = [...this.users.values()].map((u) => ({ id: `personal-${u.id}`, name: `<${u.email}>`, type: 'personal', icon: null, description: null, creatorId: u.id }));
    const team = [...this.projects.values()].map(({ members: _, ...p }) => ({ ...p, icon: null, description: null, creatorId: this.ownerId }));
    return [...personal, ...team];
  }

  handle(method: string, path: string, query: URLSearchParams, headers: Record<string, unknown>, body: any): Reply {
    // [2.8.4] no key: 401 "'X-N8N-API-KEY' header required"; a wrong one: 401 "unauthorized".
    if (headers['x-n8n-api-key'] === undefined) return json(401, { message: "'X-N8N-API-KEY' header required" });
    if (headers['x-n8n-api-key'] !== this.apiKey) return json(401, { message: 'unauthorized' });
    // users.handler.ts: the user reads need an unlimited user quota.
    if (this.usersLimited && method === 'GET' && /^\/api\/v1\/users(\/[^/]+)?$/.test(path)) {
      return json(403, { message: '/users path can only be used with a valid license. See https://n8n.io/pricing/' });
    }
    let m;
    if ((m = path.match(/^\/api\/v1\/users\/([^/]+)$/))) {
      const id = decodeURIComponent(m[1]);
      // [2.8.4] the id must be a UUID or an e-mail.
      if (!UUID.test(id) && !EMAIL.test(id)) return json(400, { message: 'request/params/id must match format "identifier"' });
      const user = this.users.get(id) ?? [...this.users.values()].find((u) => u.email === id);
      if (method === 'GET') {
        // [2.8.4] 404 "Could not find user with id: <id or e-mail>"
        if (!user) return json(404, { message: `Could not find user with id: ${id}` });
        return json(200, this.publicUser(user, query.get('includeRole') === 'true'));
      }
      if (method === 'DELETE') {
        // [2.8.4] 204; a missing user: 400, not 404.
        if (!user) return json(400, { message: 'Request to delete a user failed because the user to delete was not found in DB' });
        this.users.delete(user.id);
        for (const p of this.projects.values()) p.members.delete(user.id);
        return json(204);
      }
    }
    if (path === '/api/v1/users' && method === 'GET') {
      // [2.8.4] ?projectId= lists the project's members; an unknown project: an empty page.
      const projectId = query.get('projectId');
      const members = projectId === null ? null : this.projects.get(projectId)?.members ?? new Map();
      const list = [...this.users.values()].filter((u) => !members || members.has(u.id));
      return json(200, { data: list.map((u) => this.publicUser(u, query.get('includeRole') === 'true')), nextCursor: null });
    }
    if (path === '/api/v1/users' && method === 'POST') {
      // [2.8.4] 400 "request/body must be array"
      if (!Array.isArray(body)) return json(400, { message: 'request/body must be array' });
      // [2.8.4] 201: a new or still-pending e-mail → the user with its invitation link (the
      // same id again when pending); an e-mail that already joined is left out (201 []).
      const out = [];
      for (const invite of body as { email: string; role: string }[]) {
        let user = [...this.users.values()].find((u) => u.email === invite.email);
        if (user && !user.isPending) continue;
        if (!user) {
          user = { id: this.uuid(), email: invite.email, role: invite.role, isPending: true, createdAt: new Date().toISOString() };
          this.users.set(user.id, user);
        }
        const link = `${this.url}/signup?inviterId=${this.ownerId}&inviteeId=${user.id}`;
        // [n8n's UserService.sendEmails, not recorded] with mail set up, every pending
        // user's invitation is mailed again at each POST, and the answer drops the link
        // (only a sent mail drops it); a failing mailer leaves emailSent false, the link,
        // and names its error.
        if (this.mail === 'sends') {
          this.mailed.push(user.email);
          out.push({ user: { id: user.id, email: user.email, emailSent: true, role: user.role }, error: '' });
        } else if (this.mail === 'fails') {
          out.push({ user: { id: user.id, email: user.email, emailSent: false, role: user.role, inviteAcceptUrl: link }, error: 'Email could not be sent' });
        } else {
          out.push({ user: { id: user.id, email: user.email, emailSent: false, role: user.role, inviteAcceptUrl: link }, error: '' });
        }
      }
      return json(201, out);
    }
    if (path === '/api/v1/workflows' && method === 'GET') {
      // [doc] {data, nextCursor}, filtered by projectId and active; paged as /projects.
      const projectId = query.get('projectId');
      const active = query.get('active');
      const all = [...this.workflows.values()]
        .filter((w) => (projectId === null || w.projectId === projectId) && (active === null || String(w.active) === active))
        .map(({ projectId: _, ...w }) => w);
      return json(200, page(all, query));
    }
    if ((m = path.match(/^\/api\/v1\/workflows\/([^/]+)\/(activate|deactivate)$/)) && method === 'POST') {
      // [doc] 200 with the workflow; one that is not there: 404 {"message":"Not Found"}.
      const w = this.workflows.get(m[1]);
      if (!w) return json(404, { message: 'Not Found' });
      w.active = m[2] === 'activate';
      const { projectId: _, ...out } = w;
      return json(200, out);
    }
    if (path.startsWith('/api/v1/projects')) {
      // [2.8.4] unlicensed: every /projects call answers 403 with the licence message.
      if (!this.licensed) return json(403, { message: LICENCE });
      if (path === '/api/v1/projects' && method === 'GET') {
        // [2.8.4] {data, nextCursor}: the cursor is base64 of {limit, offset}.
        return json(200, page(this.allProjects(), query));
      }
      if (path === '/api/v1/projects' && method === 'POST') {
        // [2.8.4 E2E licence] 201 with the project (and the caller's role and scopes, left
        // out here); the same name again makes a second project. The creator is a member.
        const project = { id: randomBytes(8).toString('hex'), name: body.name, type: 'team' as const, members: new Map([[this.ownerId, 'project:admin']]) };
        this.projects.set(project.id, project);
        const now = new Date().toISOString();
        return json(201, { name: project.name, type: 'team', creatorId: this.ownerId, id: project.id, icon: null, description: null, updatedAt: now, createdAt: now, role: 'project:admin' });
      }
      if ((m = path.match(/^\/api\/v1\/projects\/([^/]+)\/users$/)) && method === 'POST') {
        // [2.8.4 E2E licence] 201 with no body, also when repeated (an upsert).
        // [2.8.4 E2E licence] the body is checked first, answered with zod's first issue.
        if (!Array.isArray(body?.relations) || body.relations.length === 0) {
          return json(400, { code: 'too_small', minimum: 1, type: 'array', inclusive: true, exact: false, message: 'Array must contain at least 1 element(s)', path: ['relations'] });
        }
        const project = this.projects.get(m[1]);
        if (!project) return json(404, { message: `Could not find project with ID: ${m[1]}` });
        for (const r of body.relations) project.members.set(r.userId, r.role);
        return json(201);
      }
      if ((m = path.match(/^\/api\/v1\/projects\/([^/]+)\/users\/([^/]+)$/)) && method === 'DELETE') {
        // [2.8.4 E2E licence] 204, also when the member is already gone; 404 for a missing project.
        const project = this.projects.get(m[1]);
        if (!project) return json(404, { message: `Could not find project with ID: ${m[1]}` });
        project.members.delete(m[2]);
        return json(204);
      }
      if ((m = path.match(/^\/api\/v1\/projects\/([^/]+)$/))) {
        // [2.8.4] there is no GET of one project.
        if (method === 'GET') return json(405, { message: 'GET method not allowed' });
        if (method === 'DELETE') {
          // [2.8.4 E2E licence] 204; a project that is not there: 400, not 404.
          if (!this.projects.delete(m[1])) return json(400, { message: `Could not find project with ID: ${m[1]}` });
          // Its workflows go with it.
          for (const [id, w] of this.workflows) if (w.projectId === m[1]) this.workflows.delete(id);
          return json(204);
        }
      }
    }
    return json(404, { message: 'not found' });
  }
}
