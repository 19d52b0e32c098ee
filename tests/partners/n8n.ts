// n8n's Public API v1 as the connector uses it: X-N8N-API-KEY (401 {"message"}),
// GET /users/{id or e-mail} (404 "Could not find user with id: X"), POST /users with an
// array → 201 [{user:{id,email,inviteAcceptUrl,emailSent},error}], /projects behind the
// feat:projectRole:admin licence (403 with n8n's licence message), paged with nextCursor.
import { json, type Reply, StandIn } from './server.ts';

interface User { id: string; email: string; role: string; projects: Set<string> }
const LICENCE = 'Your license does not allow for feat:projectRole:admin. To enable feat:projectRole:admin, please upgrade to a license that supports this feature.';

export class N8nStandIn {
  users = new Map<string, User>();
  projects = new Map<string, { id: string; name: string; type: 'team' }>();
  licensed = false;
  private n = 0;
  constructor(readonly server: StandIn, public apiKey: string) {}

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

  handle(method: string, path: string, query: URLSearchParams, headers: Record<string, unknown>, body: any): Reply {
    if (headers['x-n8n-api-key'] !== this.apiKey) return json(401, { message: 'unauthorized' });
    let m;
    if ((m = path.match(/^\/api\/v1\/users\/([^/]+)$/))) {
      const id = decodeURIComponent(m[1]);
      const user = this.users.get(id) ?? [...this.users.values()].find((u) => u.email === id);
      if (!user) return json(404, { message: `Could not find user with id: ${id}` });
      if (method === 'GET') return json(200, { id: user.id, email: user.email, role: user.role, isPending: true });
      if (method === 'DELETE') {
        this.users.delete(user.id);
        return json(204);
      }
    }
    if (path === '/api/v1/users' && method === 'POST') {
      if (!Array.isArray(body)) return json(400, { message: 'request/body must be array' });
      return json(201, body.map((invite: { email: string; role: string }) => {
        if ([...this.users.values()].some((u) => u.email === invite.email)) {
          return { user: { email: invite.email }, error: 'User already exists' };
        }
        const user: User = { id: this.uuid(), email: invite.email, role: invite.role, projects: new Set() };
        this.users.set(user.id, user);
        return { user: { id: user.id, email: user.email, inviteAcceptUrl: `${this.url}/signup?inviteeId=${user.id}`, emailSent: false }, error: '' };
      }));
    }
    if (path.startsWith('/api/v1/projects')) {
      if (!this.licensed) return json(403, { message: LICENCE });
      if (path === '/api/v1/projects' && method === 'GET') {
        const all = [...this.projects.values()];
        const start = Number(query.get('cursor') ?? 0);
        const limit = Number(query.get('limit') ?? 100);
        return json(200, { data: all.slice(start, start + limit), nextCursor: start + limit < all.length ? String(start + limit) : null });
      }
      if (path === '/api/v1/projects' && method === 'POST') {
        const project = { id: `proj_${++this.n}`, name: body.name, type: 'team' as const };
        this.projects.set(project.id, project);
        return json(201, project);
      }
      if ((m = path.match(/^\/api\/v1\/projects\/([^/]+)\/users$/)) && method === 'POST') {
        if (!this.projects.has(m[1])) return json(404, { message: 'Project not found' });
        for (const r of body.relations) this.users.get(r.userId)?.projects.add(m[1]);
        return json(201);
      }
      if ((m = path.match(/^\/api\/v1\/projects\/([^/]+)$/)) && method === 'DELETE') {
        if (!this.projects.delete(m[1])) return json(404, { message: 'Project not found' });
        return json(204);
      }
    }
    return json(404, { message: 'not found' });
  }
}
