// Odoo as it answers, from its own sources (odoo/odoo; partner facts §3 and §6):
// - Legacy /jsonrpc (odoo/http.py JsonRPCDispatcher.handle_error): errors inside HTTP 200
//   as {error:{code:200 (0 in newer code; 404 for NotFound),message:"Odoo Server Error",
//   data:{name,message,arguments,context,debug}}}. common.login → uid or false (a result,
//   not an error). `gated`: a newer release whose addons/rpc/controllers/jsonrpc.py answers
//   object.* and common.login/authenticate with werkzeug NotFound ("404: Not Found") unless
//   the system parameter rpc.use_deprecated_services is set (`useDeprecatedServices`); the
//   db service and common.version stay open.
// - JSON-2 (addons/rpc/controllers/json2.py, Json2Dispatcher): POST /json/2/<model>/<method>
//   with Authorization: bearer <key> and X-Odoo-Database; bare JSON result; errors
//   {name,message,arguments,context,debug} with the status of the exception:
//   UserError/ValidationError 422, AccessDenied/AccessError 403, MissingError 404,
//   LockError 409, anything else — ValueError included — 500.
// - res.users (odoo/addons/base/models/res_users.py): login unique (duplicate →
//   ValidationError "The operation cannot be completed: …" from model.py
//   _as_validation_error); the default company_id must be one of company_ids
//   (_check_company → ValidationError); the groups field is groups_id up to 18.0 and
//   group_ids from saas~18.1/19.0 (`version`); writing a field the model lacks raises
//   ValueError("Invalid field …") → 500 over JSON-2.
// - res.company (res_company.py _check_active): archiving a company that is the default
//   company of an active user → ValidationError "The company … cannot be archived because
//   it is still used as the default company of N users."
// - db service (odoo/service/db.py): db_exist/list open; create_database/drop need the
//   master password; create_database blocks until the database is built (`createDbMs`
//   here; the name exists — db_exist true — from the start, and logging in before it is
//   built fails with a database error); an existing name → "database 'x' already exists!".
// - Rate limits: none documented; a proxy's 429 is plain text.
import { json, type Reply, StandIn } from './server.ts';

type Row = Record<string, any> & { id: number; active: boolean };
type Domain = [string, string, unknown][];
type Cmd = [number, number, number[]?];

class OdooError {
  constructor(readonly name: string, readonly message: string) {}
}

const STATUS: Record<string, number> = {
  'odoo.exceptions.UserError': 422,
  'odoo.exceptions.ValidationError': 422,
  'odoo.exceptions.AccessDenied': 403,
  'odoo.exceptions.AccessError': 403,
  'odoo.exceptions.MissingError': 404,
  'odoo.exceptions.LockError': 409,
};

interface TenantDb { ready: boolean; login: string; password: string; modules: string[]; otherLogins?: string[] }

export class OdooStandIn {
  tables: Record<string, Map<number, Row>> = { 'res.company': new Map(), 'res.users': new Map(), 'res.groups': new Map(), 'ir.model.data': new Map() };
  databases = new Map<string, TenantDb>([['main', { ready: true, login: '', password: '', modules: ['base'] }]]);
  /** 18: groups_id; 19: group_ids. */
  version = 18;
  /** A release that gates /jsonrpc behind rpc.use_deprecated_services. */
  gated = false;
  useDeprecatedServices = false;
  /** How long create_database takes. */
  createDbMs = 0;
  /** Databases Odoo cannot connect to now: db_exist answers false for them —
   *  odoo/service/db.py exp_db_exist returns False on any exception of db_connect — and a
   *  login raises psycopg2's OperationalError. `refusing`: Odoo's Postgres refuses every
   *  connection (too many clients), so create_database fails with that error too;
   *  otherwise only that database refuses, and its create says it exists. */
  unreachable = new Set<string>();
  refusing = false;
  /** The next n writes answer LockError (another transaction holds the rows). */
  lockWrites = 0;
  /** Runs before the next write: another client's change committed just before it. */
  beforeWrite: (() => void) | undefined = undefined;
  /** Runs before the next create (an earlier request's create committing just before it). */
  beforeCreate: (() => void) | undefined = undefined;
  /** The next call raises this Python exception, named as Odoo's serialize_exception names
   *  it: '{module}.{name}' ('builtins.ValueError', 'odoo.exceptions.UserError'). */
  raiseNext: string | null = null;
  private n = 10;
  constructor(readonly server: StandIn, public login: string, public key: string, readonly masterPassword: string) {
    for (const [xmlid, name] of [['group_user', 'Internal User'], ['group_system', 'Settings'], ['group_erp_manager', 'Access Rights']]) {
      const id = ++this.n;
      this.tables['res.groups'].set(id, { id, active: true, name });
      this.tables['ir.model.data'].set(++this.n, { id: this.n, active: true, module: 'base', name: xmlid, model: 'res.groups', res_id: id });
    }
    this.tables['res.company'].set(1, { id: 1, active: true, name: 'Main Company' });
  }

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

  get groupsField() {
    return this.version >= 19 ? 'group_ids' : 'groups_id';
  }

  groupId(xmlid: string): number {
    return [...this.tables['ir.model.data'].values()].find((r) => `${r.module}.${r.name}` === xmlid)!.res_id;
  }

  private rpcError(id: unknown, name: string, message: string): Reply {
    const notFound = name === 'werkzeug.exceptions.NotFound';
    return json(200, {
      jsonrpc: '2.0', id,
      error: { code: notFound ? 404 : 200, message: notFound ? '404: Not Found' : 'Odoo Server Error', data: { name, message, arguments: [message], context: {}, debug: 'Traceback…' } },
    });
  }

  private ids(row: Row, field: string): number[] {
    return (row[field] ?? []) as number[];
  }

  private matches(row: Row, domain: Domain, activeTest: boolean) {
    if (activeTest && row.active === false) return false;
    return domain.every(([f, op, v]) => {
      const value = row[f];
      if (op === '=') return value === v;
      if (op === '!=') return value !== v;
      if (op === 'in') return Array.isArray(value) ? value.some((x) => (v as unknown[]).includes(x)) : (v as unknown[]).includes(value);
      throw new OdooError('builtins.ValueError', `Invalid domain operator ${op}`);
    });
  }

  private applyX2many(current: number[], cmds: Cmd[]): number[] {
    let ids = new Set(current);
    for (const [cmd, a, b] of cmds) {
      if (cmd === 6) ids = new Set(b);
      if (cmd === 4) ids.add(a);
      if (cmd === 3) ids.delete(a);
    }
    return [...ids];
  }

  private writeRow(model: string, row: Row, vals: Record<string, unknown>) {
    const x2many = model === 'res.users' ? ['company_ids', this.groupsField] : [];
    const known = model === 'res.users'
      ? ['name', 'login', 'email', 'active', 'company_id', 'company_ids', this.groupsField]
      : model === 'res.company' ? ['name', 'active'] : Object.keys(vals);
    for (const [field, value] of Object.entries(vals)) {
      if (!known.includes(field)) throw new OdooError('builtins.ValueError', `Invalid field '${field}' on model '${model}'`);
      row[field] = x2many.includes(field) ? this.applyX2many(this.ids(row, field), value as Cmd[]) : value;
    }
    if (model === 'res.users' && row.company_id && !this.ids(row, 'company_ids').includes(row.company_id)) {
      throw new OdooError('odoo.exceptions.ValidationError',
        `Company ${this.tables['res.company'].get(row.company_id)?.name} is not in the allowed companies for user ${row.name} (${this.ids(row, 'company_ids').join(', ')}).`);
    }
    if (model === 'res.company' && row.active === false) {
      const users = [...this.tables['res.users'].values()].filter((u) => u.active && u.company_id === row.id).length;
      if (users) {
        throw new OdooError('odoo.exceptions.ValidationError',
          `The company ${row.name} cannot be archived because it is still used as the default company of ${users} users.`);
      }
    }
  }

  private execute(db: string, model: string, method: string, args: any[], kwargs: Record<string, any>): unknown {
    if (db !== 'main') {
      // A tenant database: what a readiness check reads.
      if (model === 'ir.module.module' && method === 'search_read') {
        const names = this.databases.get(db)!.modules;
        return names.filter((n) => (args[0] as Domain).every(([f, , v]) => f !== 'name' || v === n)).map((n) => ({ id: 1, name: n, state: 'installed' }));
      }
      // Its administrator (uid 2, base.user_admin) changing its own login and password, as
      // an administrator may (the password field's inverse hashes it; other sessions end).
      // Its other users (uid 3 on): found by login.
      if (model === 'res.users' && method === 'search_read') {
        const others = this.databases.get(db)!.otherLogins ?? [];
        const login = (args[0] as Domain).find(([f, op]) => f === 'login' && op === '=')?.[2];
        const i = others.indexOf(login as string);
        return i < 0 ? [] : [{ id: 3 + i }];
      }
      if (model === 'res.users' && method === 'write') {
        const target = this.databases.get(db)!;
        if (JSON.stringify(args[0]) !== '[2]') throw new OdooError('odoo.exceptions.MissingError', 'Record does not exist or has been deleted.');
        const vals = args[1] as { login?: string; password?: string };
        if (vals.login && (target.otherLogins ?? []).includes(vals.login)) {
          throw new OdooError('odoo.exceptions.ValidationError', 'The operation cannot be completed: You can not have two users with the same login !');
        }
        if (vals.login) target.login = vals.login;
        if (vals.password) target.password = vals.password;
        return true;
      }
      throw new OdooError('odoo.exceptions.AccessError', 'not modelled in the stand-in');
    }
    if (this.raiseNext) {
      const name = this.raiseNext;
      this.raiseNext = null;
      throw new OdooError(name, `${name} raised by the stand-in`);
    }
    if (method === 'fields_get' && model === 'res.users') {
      const wanted: string[] | undefined = args[0] ?? kwargs.allfields;
      const all: Record<string, { type: string }> = { login: { type: 'char' }, company_ids: { type: 'many2many' }, [this.groupsField]: { type: 'many2many' } };
      return Object.fromEntries(Object.entries(all).filter(([k]) => !wanted?.length || wanted.includes(k)));
    }
    const table = this.tables[model];
    if (!table) throw new OdooError('odoo.exceptions.MissingError', `Model ${model} does not exist`);
    if (method === 'write' && this.beforeWrite) {
      const other = this.beforeWrite;
      this.beforeWrite = undefined;
      other(); // another client's write, committed just before this one
    }
    if ((method === 'create' || method === 'write') && this.lockWrites > 0) {
      this.lockWrites--;
      throw new OdooError('odoo.exceptions.LockError', 'Cannot lock the records: another transaction holds them; try again.');
    }
    if (method === 'create' && this.beforeCreate) {
      const other = this.beforeCreate;
      this.beforeCreate = undefined;
      other();
    }
    if (method === 'create') {
      const ids = (Array.isArray(args[0]) ? args[0] : [args[0]]).map((vals: Record<string, unknown>) => {
        // res_company.py's _name_uniq: a company name is unique (IntegrityError, raised as
        // a ValidationError by the RPC layer).
        if (model === 'res.company' && [...table.values()].some((r) => r.name === vals.name)) {
          throw new OdooError('odoo.exceptions.ValidationError', 'The company name must be unique!');
        }
        if (model === 'res.users' && [...table.values()].some((r) => r.login === vals.login)) {
          throw new OdooError('odoo.exceptions.ValidationError', 'The operation cannot be completed: You can not have two users with the same login !');
        }
        const row: Row = { active: true, id: ++this.n };
        this.writeRow(model, row, vals);
        if (model === 'res.users') row[this.groupsField] = [...new Set([this.groupId('base.group_user'), ...this.ids(row, this.groupsField)])];
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
        .map((r) => Object.fromEntries(['id', ...fields].map((f) => {
          if (f === 'company_id') return [f, r.company_id ? [r.company_id, this.tables['res.company'].get(r.company_id)?.name] : false];
          return [f, r[f] ?? (f.endsWith('_ids') ? [] : false)];
        })));
    }
    if (method === 'write') {
      const rows = (args[0] as number[]).map((id) => {
        const row = table.get(id);
        if (!row) throw new OdooError('odoo.exceptions.MissingError', 'Record does not exist or has been deleted.');
        return row;
      });
      // One transaction: a refused write changes nothing.
      const before = rows.map((r) => structuredClone(r));
      try {
        for (const row of rows) this.writeRow(model, row, args[1]);
      } catch (e) {
        rows.forEach((r, i) => Object.assign(r, before[i]));
        throw e;
      }
      return true;
    }
    throw new OdooError('builtins.AttributeError', `The method '${method}' does not exist on the model '${model}'`);
  }

  handle(method: string, path: string, headers: Record<string, unknown>, body: any): Reply | Promise<Reply> {
    if (path === '/jsonrpc' && method === 'POST') return this.jsonrpc(body);
    const j2 = path.match(/^\/json\/2\/([^/]+)\/([^/]+)$/);
    if (j2 && method === 'POST') {
      if (headers.authorization !== `bearer ${this.key}`) {
        return json(401, { name: 'werkzeug.exceptions.Unauthorized', message: 'Invalid apikey', arguments: ['Invalid apikey'], context: {}, debug: '' });
      }
      try {
        const [, model, m] = j2;
        const args = m === 'create' ? [body.vals_list] : m === 'write' ? [body.ids, body.vals] : m === 'fields_get' ? [body.allfields] : [body.domain];
        return json(200, this.execute(String(headers['x-odoo-database'] ?? 'main'), model, m, args, body));
      } catch (e) {
        const { name, message } = e as OdooError;
        return json(STATUS[name] ?? 500, { name, message, arguments: [message], context: {}, debug: '' });
      }
    }
    return json(404, { name: 'werkzeug.exceptions.NotFound', message: '404: Not Found' });
  }

  private async jsonrpc(body: any): Promise<Reply> {
    const { service, method: m, args } = body.params ?? {};
    const ok = (result: unknown) => json(200, { jsonrpc: '2.0', id: body.id, result });
    try {
      if (this.gated && !this.useDeprecatedServices && (service === 'object' || (service === 'common' && ['login', 'authenticate'].includes(m)))) {
        const target = this.databases.get(args[0]);
        if (target && !target.ready) throw new OdooError('psycopg2.errors.UndefinedTable', 'relation "ir_config_parameter" does not exist');
        throw new OdooError('werkzeug.exceptions.NotFound', '404 Not Found: The requested URL was not found on the server.');
      }
      if (service === 'common' && m === 'version') return ok({ server_version: `${this.version}.0`, server_version_info: [this.version, 0, 0, 'final', 0, ''], protocol_version: 1 });
      if (service === 'common' && m === 'login') {
        const [db, login, password] = args;
        const target = this.databases.get(db);
        if (!target) throw new OdooError('psycopg2.OperationalError', `FATAL:  database "${db}" does not exist`);
        if (this.unreachable.has(db)) throw new OdooError('psycopg2.OperationalError', 'FATAL:  sorry, too many clients already');
        if (!target.ready) throw new OdooError('psycopg2.errors.UndefinedTable', 'relation "res_users" does not exist');
        if (db === 'main') return ok(login === this.login && password === this.key ? 2 : false);
        return ok(login === target.login && password === target.password ? 2 : false);
      }
      if (service === 'object' && m === 'execute_kw') {
        const [db, uid, key, model, method2, posArgs, kwargs] = args;
        const target = this.databases.get(db);
        const valid = db === 'main' ? key === this.key : key === target?.password;
        if (uid !== 2 || !valid || !target?.ready) throw new OdooError('odoo.exceptions.AccessDenied', 'Access Denied');
        return ok(this.execute(db, model, method2, posArgs, kwargs ?? {}));
      }
      if (service === 'db') {
        if (m === 'db_exist') return ok(this.databases.has(args[0]) && !this.unreachable.has(args[0]));
        if (m === 'list') return ok([...this.databases.keys()]);
        if (args[0] !== this.masterPassword) throw new OdooError('odoo.exceptions.AccessDenied', 'Access Denied');
        if (m === 'create_database') {
          const [, name, , , password, login] = args;
          if (this.refusing) throw new OdooError('psycopg2.OperationalError', 'FATAL:  sorry, too many clients already');
          if (this.databases.has(name)) throw new Error(`database '${name}' already exists!`);
          const db: TenantDb = { ready: false, login, password, modules: [] };
          this.databases.set(name, db);
          await new Promise((r) => setTimeout(r, this.createDbMs));
          Object.assign(db, { ready: true, modules: ['base', 'web'] });
          return ok(true);
        }
        if (m === 'drop') return ok(this.databases.delete(args[1]));
      }
      throw new OdooError('werkzeug.exceptions.NotFound', '404 Not Found');
    } catch (e) {
      // A bare Exception (create_database's "already exists") serializes as builtins.Exception.
      const { name, message } = e instanceof OdooError ? e : { name: 'builtins.Exception', message: (e as Error).message };
      return this.rpcError(body.id, name, message);
    }
  }
}
