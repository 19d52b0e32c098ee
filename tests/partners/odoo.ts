// Odoo as the connector uses it. Legacy /jsonrpc: common.login → uid or false, object
// execute_kw on res.company / res.users (create, search_read with "=" domains and
// active_test, write), the db service, and errors inside HTTP 200
// ({error:{code:200,message:"Odoo Server Error",data:{name,message}}}). JSON-2
// (/json/2/<model>/<method>, bearer key, X-Odoo-Database) with {name,message} errors.
import { json, type Reply, StandIn } from './server.ts';

type Row = Record<string, any> & { id: number; active: boolean };

export class OdooStandIn {
  tables: Record<string, Map<number, Row>> = { 'res.company': new Map(), 'res.users': new Map() };
  databases = new Set<string>(['main']);
  private n = 1;
  constructor(readonly server: StandIn, public login: string, public key: string, readonly masterPassword: string) {}

  static async start(login = 'provisioner@odoo.test', key = 'odoo-key', masterPassword = 'master') {
    let self: OdooStandIn | undefined;
    const server = await StandIn.start((req) => self!.handle(req.method, req.path, req.headers, req.body), (s) =>
      s === 429 ? 'Too Many Requests' : '<html>502 Bad Gateway</html>');
    self = new OdooStandIn(server, login, key, masterPassword);
    return self;
  }

  get url() {
    return this.server.url;
  }

  private rpcError(id: unknown, name: string, message: string): Reply {
    return json(200, { jsonrpc: '2.0', id, error: { code: 200, message: 'Odoo Server Error', data: { name, message, arguments: [message], context: {}, debug: 'Traceback…' } } });
  }

  private companyIds(row: Row): number[] {
    const cmds = (row.company_ids ?? []) as [number, number, number[]][];
    return cmds.flatMap(([cmd, , ids]) => (cmd === 6 ? ids : []));
  }

  private matches(row: Row, domain: [string, string, unknown][], activeTest: boolean) {
    if (activeTest && !row.active) return false;
    return domain.every(([f, op, v]) => op === '=' && row[f] === v);
  }

  private execute(model: string, method: string, args: any[], kwargs: Record<string, any>): unknown {
    const table = this.tables[model];
    if (!table) throw ['odoo.exceptions.MissingError', `Model ${model} does not exist`];
    if (method === 'create') {
      const ids = (Array.isArray(args[0]) ? args[0] : [args[0]]).map((vals: Record<string, unknown>) => {
        if (model === 'res.users' && [...table.values()].some((r) => r.login === vals.login)) {
          throw ['odoo.exceptions.ValidationError', 'The operation cannot be completed: You can not have two users with the same login !'];
        }
        const row: Row = { active: true, ...vals, id: ++this.n };
        table.set(row.id, row);
        return row.id;
      });
      return ids;
    }
    if (method === 'search_read') {
      const activeTest = kwargs.context?.active_test !== false;
      const fields: string[] = kwargs.fields ?? ['id'];
      return [...table.values()].filter((r) => this.matches(r, args[0] ?? kwargs.domain ?? [], activeTest))
        .slice(0, kwargs.limit ?? undefined)
        .map((r) => Object.fromEntries(['id', ...fields].map((f) => [f, f === 'company_ids' ? this.companyIds(r) : r[f]])));
    }
    if (method === 'write') {
      for (const id of args[0]) {
        const row = table.get(id);
        if (!row) throw ['odoo.exceptions.MissingError', 'Record does not exist or has been deleted.'];
        for (const [field, value] of Object.entries(args[1] as Record<string, unknown>)) {
          if (field === 'company_ids') {
            // x2many commands: (6,0,ids) replace, (4,id) link, (3,id) unlink.
            let ids = new Set(this.companyIds(row));
            for (const [cmd, a, b] of value as [number, number, number[]][]) {
              if (cmd === 6) ids = new Set(b);
              if (cmd === 4) ids.add(a);
              if (cmd === 3) ids.delete(a);
            }
            row.company_ids = [[6, 0, [...ids]]];
          } else {
            row[field] = value;
          }
        }
      }
      return true;
    }
    throw ['odoo.exceptions.AttributeError', `no method ${method}`];
  }

  handle(method: string, path: string, headers: Record<string, unknown>, body: any): Reply {
    if (path === '/jsonrpc' && method === 'POST') {
      const { service, method: m, args } = body.params ?? {};
      try {
        if (service === 'common' && m === 'login') {
          return json(200, { jsonrpc: '2.0', id: body.id, result: args[1] === this.login && args[2] === this.key ? 2 : false });
        }
        if (service === 'object' && m === 'execute_kw') {
          const [, uid, key, model, method2, posArgs, kwargs] = args;
          if (uid !== 2 || key !== this.key) return this.rpcError(body.id, 'odoo.exceptions.AccessDenied', 'Access Denied');
          return json(200, { jsonrpc: '2.0', id: body.id, result: this.execute(model, method2, posArgs, kwargs ?? {}) });
        }
        if (service === 'db') {
          if (m === 'db_exist') return json(200, { jsonrpc: '2.0', id: body.id, result: this.databases.has(args[0]) });
          if (args[0] !== this.masterPassword) return this.rpcError(body.id, 'odoo.exceptions.AccessDenied', 'Access Denied');
          if (m === 'create_database') {
            if (this.databases.has(args[1])) return this.rpcError(body.id, 'odoo.exceptions.UserError', `database '${args[1]}' already exists!`);
            this.databases.add(args[1]);
            return json(200, { jsonrpc: '2.0', id: body.id, result: true });
          }
          if (m === 'drop') return json(200, { jsonrpc: '2.0', id: body.id, result: this.databases.delete(args[1]) });
        }
        return this.rpcError(body.id, 'werkzeug.exceptions.NotFound', '404: Not Found');
      } catch (e) {
        const [name, message] = e as [string, string];
        return this.rpcError(body.id, name, message);
      }
    }
    const j2 = path.match(/^\/json\/2\/([^/]+)\/([^/]+)$/);
    if (j2 && method === 'POST') {
      if (headers.authorization !== `bearer ${this.key}`) {
        return json(401, { name: 'werkzeug.exceptions.Unauthorized', message: 'Invalid apikey', arguments: [], context: {}, debug: '' });
      }
      try {
        const [, model, m] = j2;
        const args = m === 'create' ? [body.vals_list] : m === 'write' ? [body.ids, body.vals] : [body.domain];
        return json(200, this.execute(model, m, args, body));
      } catch (e) {
        const [name, message] = e as [string, string];
        return json(422, { name, message, arguments: [message], context: {}, debug: '' });
      }
    }
    return json(404, { name: 'werkzeug.exceptions.NotFound', message: '404: Not Found' });
  }
}
