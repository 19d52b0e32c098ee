// Odoo: a company and its admin user per tenant in a shared database (default), or a
// database per tenant. Two transports behind one small interface: the legacy /jsonrpc
// (16–18; errors arrive inside HTTP 200 and are mapped by their data.name) and JSON-2
// (19+: POST /json/2/<model>/<method>, bearer key, X-Odoo-Database; the status of the
// exception). Checked against odoo/odoo's addons/rpc/controllers/{jsonrpc,json2}.py,
// odoo/http.py, odoo/service/db.py, res_users.py and res_company.py (partner facts §6).
//
// Errors. Retrying cannot fix AccessDenied, AccessError, UserError, ValidationError,
// MissingError or a Python ValueError/TypeError/KeyError/AttributeError (JSON-2 answers
// those with 500, so over JSON-2 a 500 is read by its `name`); LockError (409 over JSON-2)
// and database errors are transient. Newer releases answer /jsonrpc common.login and
// object.execute_kw with werkzeug NotFound unless the system parameter
// rpc.use_deprecated_services is set: permanent, with what to change.
//
// Company mode (a shared database). Odoo keeps a user's default company among their
// allowed companies and refuses to archive a company that is an active user's default, so
// suspending or removing one tenant of an owner who has several first moves the owner's
// default company to another of theirs, then takes this company away; an owner left with
// no other company is archived instead. Removal does the same for every user of the
// company (the provisioning user excepted), then archives the company (unlink fails on
// references; archiving is Odoo's removal). The owner gets the groups named in
// adminGroups (xml ids, resolved through ir.model.data) on the groups field this server
// has: groups_id up to 18.0, group_ids from saas~18.1/19.0 — read from fields_get, not
// guessed from the version string. The default is base.group_user: in a shared database
// Odoo has no per-company administrator, and base.group_system would let a tenant's admin
// give themselves every other tenant's company (see the README).
//
// Database mode. create_database blocks while Odoo builds the database, for minutes; it
// runs with its own long timeout, and the database counts as provisioned only once it is
// usable (its admin logs in and the base module is installed) — a timeout, or a retry
// that finds db_exist true, waits for that instead of trusting the name.
import { generatePassword } from '../crypto.ts';
import { type Connector, formerOwners, formerOwnersRecord, PartnerError, partnerFetch, type ProvisionContext } from './types.ts';

export interface OdooConfig {
  url: string;
  db: string;
  login: string;
  /** Password or API key of the provisioning user. */
  key: string;
  transport?: 'jsonrpc' | 'json2';
  mode?: 'company' | 'database';
  masterPassword?: string;
  timeoutMs?: number;
  /** create_database's own timeout (it blocks while the database is built). */
  createDatabaseTimeoutMs?: number;
  /** How long a database may stay unusable after its creation began before it counts as failed. */
  databaseReadyWithinMs?: number;
  /** Groups (xml ids) the tenant's owner gets in company mode. */
  adminGroups?: string[];
}

const PERMANENT = [
  'AccessDenied',
  'AccessError',
  'ValidationError',
  'UserError',
  'MissingError',
  'ValueError',
  'TypeError',
  'KeyError',
  'AttributeError',
];
const isPermanent = (name: string) => PERMANENT.some((p) => name.endsWith(p));

/** Odoo answered NotFound to a deprecated /jsonrpc service: a configuration matter. */
class OdooRpcGated extends PartnerError {
  constructor(what: string) {
    super(
      'odoo',
      `Odoo answers 404 (werkzeug.exceptions.NotFound) to /jsonrpc ${what}: this release serves the deprecated RPC only with the system parameter rpc.use_deprecated_services = True — set it, or use JSON-2 (ODOO_TRANSPORT=json2 with an API key)`,
      false,
    );
  }
}

/** A tenant database's administrator, as stored (and shown once): with a hand-over under
 *  way, the new password not yet applied and the login it replaces. */
interface DatabaseCredentials extends Record<string, unknown> {
  login: string;
  password: string;
  database: string;
  password_pending?: boolean;
  handing_over?: { login: string; password: string };
  /** Whose the administrator is, where its login is another's (the owner had a user of
   *  their own in the database when it was handed over). */
  owner?: string;
}

interface Transport {
  call(model: string, method: string, args: unknown[], kwargs?: Record<string, unknown>): Promise<unknown>;
  db(method: string, args: unknown[], timeoutMs?: number): Promise<unknown>;
  /** Logs in to another database as one of its users and reads there (readiness checks). */
  as?(db: string, login: string, password: string): {
    login(): Promise<number | false>;
    call(model: string, method: string, args: unknown[], kwargs?: Record<string, unknown>): Promise<unknown>;
  };
}

function jsonRpc(config: OdooConfig): Transport {
  let uid: number | undefined;
  const rpc = async (service: string, method: string, args: unknown[], timeoutMs = config.timeoutMs) => {
    const { body } = await partnerFetch('odoo', `${config.url.replace(/\/$/, '')}/jsonrpc`, {
      method: 'POST',
      body: { jsonrpc: '2.0', method: 'call', params: { service, method, args }, id: Date.now() },
      timeoutMs,
    }) as {
      body: {
        result?: unknown;
        error?: { code: number; message: string; data?: { name?: string; message?: string } };
      };
    };
    // A 200 that is not a JSON-RPC answer (a proxy's maintenance page, a redirect to a
    // login page): not Odoo speaking, so not a refusal — worth a retry.
    if (typeof body !== 'object' || body === null || (!('result' in body) && !body.error)) {
      throw new PartnerError('odoo', `${service}.${method}: the answer is not a JSON-RPC response`, true);
    }
    if (body.error) {
      const name = body.error.data?.name ?? '';
      if (name === 'werkzeug.exceptions.NotFound' || body.error.code === 404) {
        throw new OdooRpcGated(`${service}.${method}`);
      }
      throw new PartnerError(
        'odoo',
        `${service}.${method}: ${name || body.error.message}: ${
          String(body.error.data?.message ?? body.error.message).slice(0, 300)
        }`,
        !isPermanent(name),
      );
    }
    return body.result;
  };
  return {
    async call(model, method, args, kwargs = {}) {
      uid ??= await rpc('common', 'login', [config.db, config.login, config.key]) as number;
      if (!uid) throw new PartnerError('odoo', 'login refused for the provisioning user', false);
      return await rpc('object', 'execute_kw', [config.db, uid, config.key, model, method, args, kwargs]);
    },
    db: (method, args, timeoutMs) => rpc('db', method, args, timeoutMs),
    as(db, login, password) {
      let other: number | false | undefined;
      return {
        login: async () => (other = await rpc('common', 'login', [db, login, password]) as number | false),
        call: (model, method, args, kwargs = {}) =>
          rpc('object', 'execute_kw', [db, other, password, model, method, args, kwargs]),
      };
    },
  };
}

function json2(config: OdooConfig): Transport {
  return {
    async call(model, method, args, kwargs = {}) {
      // JSON-2 takes named parameters: positional ids/values become their names.
      const named: Record<string, unknown> = { ...kwargs };
      if (method === 'create') named.vals_list = args[0];
      else if (method === 'write') Object.assign(named, { ids: args[0], vals: args[1] });
      else if (method === 'search_read') named.domain = args[0];
      else if (method === 'fields_get') named.allfields = args[0];
      const path = `/json/2/${model}/${method}`;
      const { status, body, headers } = await partnerFetch('odoo', `${config.url.replace(/\/$/, '')}${path}`, {
        method: 'POST',
        headers: { authorization: `bearer ${config.key}`, 'x-odoo-database': config.db },
        body: named,
        timeoutMs: config.timeoutMs,
        // Errors come back here to be read by the exception's name (429 and 502–504
        // throw retryable, with Retry-After).
        accept: [400, 401, 403, 404, 409, 422, 500],
      });
      if (status < 400) {
        // A 200 that is not Odoo's JSON (a proxy's maintenance page): worth a retry, and
        // never read as an answer (an empty search would make a second company).
        if (!/json/i.test(headers.get('content-type') ?? '')) {
          throw new PartnerError('odoo', `POST ${path}: the answer is not JSON`, true, status);
        }
        return body;
      }
      const err = (typeof body === 'object' && body !== null ? body : {}) as { name?: string; message?: string };
      const name = err.name ?? '';
      const transient = name.endsWith('LockError') || (status >= 500 && !isPermanent(name));
      throw new PartnerError(
        'odoo',
        `POST ${path} → ${status}${name ? ` ${name}` : ''}: ${String(err.message ?? body ?? '').slice(0, 300)}`,
        transient,
        status,
      );
    },
    db() {
      throw new PartnerError(
        'odoo',
        'JSON-2 has no database service: use the jsonrpc transport for database mode',
        false,
      );
    },
  };
}

type UserRow = { id: number; active: boolean; company_id: [number, string] | number | false; company_ids: number[] };
const m2oId = (v: UserRow['company_id']) => (Array.isArray(v) ? v[0] : v || undefined);

export function odooConnector(config: OdooConfig): Connector {
  const t = (config.transport ?? 'jsonrpc') === 'json2' ? json2(config) : jsonRpc(config);
  const mode = config.mode ?? 'company';
  const companyName = (ctx: ProvisionContext) => `${ctx.tenant.name} (${ctx.tenant.slug})`;
  /** A removed tenant's archived company is renamed to carry the tenant's id: a later
   *  tenant with the same name and slug (slugs are freed when a deleted tenant is purged)
   *  must not find it by name and take over its contacts and invoices. */
  const removedName = (ctx: ProvisionContext) => `${companyName(ctx)} [removed tenant ${ctx.tenant.id}]`;
  /** The name when another tenant's company already has the tenant's. */
  const uniqueName = (ctx: ProvisionContext) => `${ctx.tenant.name} (${ctx.tenant.slug}, ${ctx.tenant.id.slice(0, 8)})`;
  /** Whether a partner object found by a name made from the slug may be this tenant's:
   *  no other tenant's service records it. A slug can change (platform admins,
   *  20261206143000) and a later tenant can get the old one: the names then match another
   *  tenant's company, database or project. Without the count, assume it is someone's. */
  const unclaimed = async (ctx: ProvisionContext, key: string, value: unknown) =>
    ctx.otherTenantsUsing ? await ctx.otherTenantsUsing(key, value) === 0 : false;
  /** The tenant's database: the one recorded, else `tenant_<slug>` unless another tenant
   *  has that one (then with the tenant id's first letters). */
  const dbName = async (ctx: ProvisionContext, credentials?: { database?: string } | null) => {
    // The one recorded, unless another tenant has it now: a removal drops the database but
    // keeps the record, and the name may have gone to another tenant meanwhile.
    const recorded = ctx.externalIds.database ?? credentials?.database;
    if (typeof recorded === 'string' && recorded && await unclaimed(ctx, 'database', recorded)) return recorded;
    const name = `tenant_${ctx.tenant.slug.replace(/-/g, '_')}`;
    return await unclaimed(ctx, 'database', name) ? name : `${name}_${ctx.tenant.id.slice(0, 8)}`;
  };
  const noArchived = { context: { active_test: false } };
  const USER_FIELDS = ['active', 'company_id', 'company_ids'];

  async function findOne(model: string, domain: unknown[]): Promise<number | undefined> {
    const rows = await t.call(model, 'search_read', [domain], {
      fields: ['id'],
      limit: 1,
      ...noArchived,
    }) as { id: number }[];
    return rows[0]?.id;
  }

  /** The tenant's company found by one of the names it may have, never one another
   *  tenant's service records (see `unclaimed`): its names now, and the name a create
   *  asked for (recorded before it, as `company_requested`), which a rename of the
   *  tenant since a create whose answer was lost no longer makes. */
  async function ownCompanyByName(ctx: ProvisionContext): Promise<number | undefined> {
    const requested = ctx.externalIds.company_requested;
    const rows = await t.call('res.company', 'search_read', [[['name', 'in', [
      companyName(ctx),
      uniqueName(ctx),
      removedName(ctx),
      ...(typeof requested === 'string' && requested ? [requested] : []),
    ]]]], { fields: ['id'], ...noArchived }) as { id: number }[];
    for (const { id } of rows) if (await unclaimed(ctx, 'company_id', id)) return id;
    return undefined;
  }

  async function readUser(id: number): Promise<UserRow | undefined> {
    const [row] = await t.call('res.users', 'search_read', [[['id', '=', id]]], {
      fields: USER_FIELDS,
      ...noArchived,
    }) as UserRow[];
    return row;
  }

  /** The groups field of this server's res.users, and the ids of the groups to grant. */
  async function adminGroups(): Promise<Record<string, unknown>> {
    const xmlids = config.adminGroups ?? ['base.group_user'];
    if (!xmlids.length) return {};
    const fields = await t.call('res.users', 'fields_get', [['group_ids', 'groups_id']], { attributes: ['type'] }) as Record<
      string,
      unknown
    >;
    const field = 'group_ids' in fields ? 'group_ids' : 'groups_id';
    const names = xmlids.map((x) => x.split('.'));
    const rows = await t.call('ir.model.data', 'search_read', [[
      ['model', '=', 'res.groups'],
      ['name', 'in', names.map(([, n]) => n)],
    ]], { fields: ['module', 'name', 'res_id'] }) as { module: string; name: string; res_id: number }[];
    const ids = names.map(([mod, n]) => rows.find((r) => r.module === mod && r.name === n)?.res_id);
    if (ids.some((id) => id === undefined)) {
      throw new PartnerError('odoo', `unknown group among ${xmlids.join(', ')} (ODOO_ADMIN_GROUPS)`, false);
    }
    return { [field]: ids.map((id) => [4, id]) };
  }

  /** Takes this company away from a user: the default moves to another of theirs first
   *  (Odoo refuses a default outside the allowed companies); a user with no other
   *  company is archived instead. */
  async function revoke(user: UserRow, companyId: number) {
    await writeFresh(user, async (user) => {
      const others = user.company_ids.filter((id) => id !== companyId);
      if (!user.active) return;
      if (!others.length) {
        await t.call('res.users', 'write', [[user.id], { active: false }]);
      } else if (user.company_ids.includes(companyId) || m2oId(user.company_id) === companyId) {
        await t.call('res.users', 'write', [[user.id], {
          ...(m2oId(user.company_id) === companyId ? { company_id: others[0] } : {}),
          company_ids: [[3, companyId, 0]],
        }]);
      }
    });
  }

  /** Gives this company (back) to a user. An archived user had no access anywhere (every
   *  company they still list was suspended or removed with its tenant): they come back
   *  with this company only. */
  async function grant(user: UserRow, companyId: number, extra: Record<string, unknown> = {}) {
    await writeFresh(user, async (user) => {
      await t.call('res.users', 'write', [
        [user.id],
        user.active ? { company_ids: [[4, companyId, 0]], ...extra } : {
          active: true,
          company_ids: [[6, 0, [companyId]]],
          company_id: companyId,
          ...extra,
        },
      ]);
    });
  }

  /** Takes this company away from each of these users that Odoo still has. */
  async function revokeEach(ids: number[], companyId: number) {
    for (const id of ids) {
      const row = await readUser(id);
      if (row) await revoke(row, companyId);
    }
  }

  /** A write computed from a user as read a moment ago. Another tenant's run changing the
   *  same login meanwhile (the suspensions of two tenants one person owns, on two
   *  workers) can make it invalid — a default company no longer among the allowed ones —
   *  and Odoo's ValidationError is permanent: the service failed for good, the person
   *  keeping the other company. Read again and written once more; a refusal then is the
   *  write's own. */
  async function writeFresh(user: UserRow, write: (user: UserRow) => Promise<void>) {
    try {
      await write(user);
    } catch (err) {
      if (!(err instanceof PartnerError && !err.retryable && /ValidationError/.test(err.message))) throw err;
      const fresh = await readUser(user.id);
      if (!fresh) throw err;
      await write(fresh);
    }
  }

  /** The owner's login, by its e-mail (a login is unique; archived ones are found too). */
  const ownerLogin = (email: string) => findOne('res.users', [['login', '=', email]]);

  /** The tenant's company: its recorded id, else found by its names (a create whose answer
   *  was lost; never another tenant's). */
  async function tenantCompany(ctx: ProvisionContext): Promise<number | undefined> {
    return ctx.externalIds.company_id as number | undefined ?? await ownCompanyByName(ctx);
  }

  /** Whether Odoo still has the company (archived ones too). One deleted at Odoo (an
   *  operator's unlink, which succeeds when nothing refers to it) is gone: nothing to
   *  revoke, grant or archive, and writing to it fails with MissingError, a permanent
   *  error that left a removal failed for good (the Connector contract: an object
   *  already gone counts as removed). */
  const companyExists = async (id: number) => (await findOne('res.company', [['id', '=', id]])) !== undefined;

  /** The tenant's owner login and company, by their recorded ids; where an answer was lost
   *  before an id was recorded, found again as ensure would find them: the owner by login
   *  (unique, archived ones too), the company by its names (never another tenant's). A
   *  suspension whose ids were never recorded would otherwise revoke nothing. */
  async function owner(ctx: ProvisionContext): Promise<[UserRow | undefined, number | undefined]> {
    const userId = ctx.externalIds.user_id as number | undefined ??
      (ctx.admin ? await ownerLogin(ctx.admin.email) : undefined);
    const companyId = await tenantCompany(ctx);
    return [userId ? await readUser(userId) : undefined, companyId];
  }

  /** Whether a tenant database is usable: its admin logs in and base is installed. A
   *  release that gates /jsonrpc answers the login with NotFound only after loading the
   *  database's registry (it reads ir.config_parameter there), which a half-built
   *  database cannot do: that answer counts as usable too. */
  async function databaseReady(name: string, login: string, password: string): Promise<boolean> {
    const other = t.as!(name, login, password);
    try {
      if (!(await other.login())) return false;
      const rows = await other.call('ir.module.module', 'search_read', [[['name', '=', 'base'], ['state', '=', 'installed']]], {
        fields: ['state'],
      }) as unknown[];
      return rows.length > 0;
    } catch (err) {
      if (err instanceof OdooRpcGated) return true;
      if (err instanceof PartnerError && err.retryable) return false;
      throw err;
    }
  }

  async function ensureDatabase(ctx: ProvisionContext) {
    let credentials = ctx.credentials as DatabaseCredentials | null;
    const name = await dbName(ctx, credentials);
    if (!credentials?.password) {
      credentials = { login: ctx.admin!.email, password: generatePassword(), database: name };
      await ctx.checkpoint({}, credentials);
    }
    const wasReady = ctx.externalIds.database_state === 'ready';
    const exists = await t.db('db_exist', [name]);
    if (wasReady && exists) {
      return { externalIds: { database: name }, credentials: await handOverDatabase(ctx, name, credentials) };
    }
    if (!exists) {
      // Odoo's db_exist answers false also when it cannot connect to the database (any
      // error of db_connect): a database that was ready is not taken for gone on its word,
      // whose half-built state would end, 30 minutes on, in "drop it" for a live database.
      // Only its create succeeding says it was gone (dropped at Odoo): building from now.
      const requested = { database: name, database_state: 'creating', database_requested_at: new Date().toISOString() };
      if (!wasReady) await ctx.checkpoint(requested);
      try {
        await t.db('create_database', [
          config.masterPassword,
          name,
          false,
          'en_US',
          credentials.password,
          credentials.login,
          '',
          '',
        ], config.createDatabaseTimeoutMs ?? 90_000);
      } catch (err) {
        const there = err instanceof PartnerError && /already exists/.test(err.message);
        if (wasReady && err instanceof PartnerError && (there || err.retryable)) {
          // It says it exists, or gives no answer (Odoo's Postgres refusing connections, a
          // timeout): nothing says the database is gone. Kept ready, and tried again.
          throw new PartnerError(
            'odoo',
            `database ${name} was ready; Odoo cannot connect to it now (db_exist answers false; create_database: ${
              there ? 'it exists' : err.message
            })`,
            true,
            undefined,
            60,
          );
        }
        if (!(err instanceof PartnerError && (err.retryable || there))) throw err;
        // Odoo goes on building after our call gave up: readiness decides below.
      }
      if (wasReady) await ctx.checkpoint(requested);
    }
    if (!(await databaseReady(name, credentials.login, credentials.password))) {
      const since = Date.parse(String(ctx.externalIds.database_requested_at ?? ''));
      if (Number.isFinite(since) && Date.now() - since > (config.databaseReadyWithinMs ?? 30 * 60_000)) {
        throw new PartnerError(
          'odoo',
          `database ${name} exists but has not become usable since ${
            new Date(since).toISOString()
          } (half-built?): drop it at Odoo, then retry the service`,
          false,
        );
      }
      throw new PartnerError(
        'odoo',
        `database ${name} is still being built (create_database runs for minutes)`,
        true,
        undefined,
        30,
      );
    }
    await ctx.checkpoint({ database: name, database_state: 'ready' });
    return {
      externalIds: { database: name, database_state: 'ready' },
      credentials: await handOverDatabase(ctx, name, credentials),
    };
  }

  /** Another admin owns the tenant now (the former one left, or can no longer sign in):
   *  the database's administrator becomes theirs, with a login and a password of their
   *  own. The stored password is the former owner's, who was shown it and would keep full
   *  rights over the tenant's database; Odoo ends the sessions a password change leaves
   *  behind. The new password is chosen and recorded (with the login it replaces) before
   *  Odoo sees it, so a retry applies the same one, and not shown until applied. */
  async function handOverDatabase(
    ctx: ProvisionContext,
    name: string,
    stored: DatabaseCredentials,
  ): Promise<DatabaseCredentials> {
    const owner = ctx.admin!;
    const ownedBy = (c: DatabaseCredentials) => (c.owner ?? c.login).toLowerCase();
    if (!stored.handing_over && ownedBy(stored) === owner.email.toLowerCase()) return stored;
    let next = stored;
    if (!next.handing_over) {
      next = {
        login: owner.email,
        password: generatePassword(),
        database: name,
        password_pending: true,
        handing_over: { login: stored.login, password: stored.password },
      };
      await ctx.checkpoint({}, next);
    }
    const from = next.handing_over!;
    let login = next.login;
    const former = t.as!(name, from.login, from.password);
    const uid = await former.login();
    if (uid) {
      // The new owner may have a user of their own in the database already (a colleague
      // the former owner added), whose login the administrator cannot take (Odoo: two
      // users with one login): the administrator keeps its login, with the new password.
      const [taken] = await former.call('res.users', 'search_read', [[['login', '=', next.login], ['id', '!=', uid]]], {
        fields: ['id'],
        context: { active_test: false },
      }) as { id: number }[];
      if (taken) login = from.login;
      await former.call(
        'res.users',
        'write',
        [[uid], taken ? { password: next.password } : { login, password: next.password, email: login, name: owner.name }],
      );
    } else if (await t.as!(name, next.login, next.password).login()) {
      // applied by a run whose answer was lost
    } else if (await t.as!(name, from.login, next.password).login()) {
      login = from.login; // applied, the administrator's login kept
    } else {
      // None signs in: someone changed the administrator's password at Odoo.
      throw new PartnerError(
        'odoo',
        `database ${name}: neither the former owner's login nor the new owner's signs in to hand the administrator over; ` +
          `set its login to ${next.login} and its password at Odoo, or drop the database, then retry the service`,
        false,
      );
    }
    // Whom this hand-over was for: the owner when it began. One who changed since a run
    // failed mid-way (B, then C) is handed over to in turn, rather than the administrator
    // recorded as C's with B's address as its login (where Odoo's password resets go).
    const target = next.login;
    const done: DatabaseCredentials = {
      login,
      password: next.password,
      database: name,
      ...(login.toLowerCase() !== target.toLowerCase() ? { owner: target } : {}),
    };
    await ctx.checkpoint({}, done);
    return target.toLowerCase() === owner.email.toLowerCase() ? done : await handOverDatabase(ctx, name, done);
  }

  return {
    service: 'odoo',
    async ensure(ctx) {
      if (!ctx.admin) throw new PartnerError('odoo', 'the tenant has no admin to own the company', false);
      if (mode === 'database') return await ensureDatabase(ctx);
      // By its id, else by its name: this tenant's, or the name it was given when this
      // tenant's service was removed (never another tenant's removed company).
      let found = ctx.externalIds.company_id as number | undefined;
      // A recorded company deleted at Odoo since (drift) is made again, not granted by id.
      if (found !== undefined && await findOne('res.company', [['id', '=', found]]) === undefined) found = undefined;
      found ??= await ownCompanyByName(ctx);
      if (!found) {
        // The tenant's name, unless another tenant's company has it (a slug given up and
        // taken again): then with the tenant id's first letters, as Odoo wants names unique.
        const taken = await findOne('res.company', [['name', '=', companyName(ctx)]]);
        const name = taken ? uniqueName(ctx) : companyName(ctx);
        // Recorded first: a create whose answer is lost is found by it at the retry, even
        // when the tenant was renamed meanwhile (else a second company, the first orphaned).
        await ctx.checkpoint({ company_requested: name });
        try {
          const created = await t.call('res.company', 'create', [[{ name }]]);
          found = Array.isArray(created) ? created[0] : created as number;
        } catch (err) {
          // A create that ran past its timeout went on at Odoo and committed since: the
          // retry's create of the same name is refused (names are unique: a
          // ValidationError, permanent). It is this tenant's company, found by its name.
          found = err instanceof PartnerError && !err.retryable ? await ownCompanyByName(ctx) : undefined;
          if (!found) throw err;
        }
      }
      const companyId: number = found!;
      await ctx.checkpoint({ company_id: companyId, company_requested: null });
      const [company] = await t.call('res.company', 'search_read', [[['id', '=', companyId]]], {
        fields: ['active', 'name'],
        ...noArchived,
      }) as { active: boolean; name: string }[];
      if (company && !company.active) {
        // Brought back (the service enabled again): active, under the tenant's name again.
        const back: Record<string, unknown> = { active: true };
        if (company.name === removedName(ctx)) back.name = companyName(ctx);
        await t.call('res.company', 'write', [[companyId], back]);
      }
      const groups = await adminGroups();
      // Another admin owns the company now (the former owner left, was demoted or can no
      // longer sign in: private.provisioning_context names the oldest active admin): the
      // former owner's login loses the company below, recorded until then so a retry
      // finishes it (their login stays: it may serve another tenant's company).
      const userId = await ownerLogin(ctx.admin.email);
      let id = userId;
      if (userId) {
        // The same person already has a login (another tenant's owner): give it this company
        // (recorded first, so a suspension after a lost answer finds whom to revoke).
        await ctx.checkpoint({ user_id: userId, ...formerOwnersRecord(formerOwners(ctx.externalIds, userId)) });
        await grant((await readUser(userId))!, companyId, groups);
      } else {
        try {
          const created = await t.call('res.users', 'create', [[{
            name: ctx.admin.name,
            login: ctx.admin.email,
            email: ctx.admin.email,
            company_id: companyId,
            company_ids: [[6, 0, [companyId]]],
            ...groups,
          }]]);
          id = Array.isArray(created) ? created[0] : created as number;
        } catch (err) {
          // Another tenant of the same owner, provisioned at the same time by another
          // worker, made the login between the lookup and this create (Odoo refuses a
          // second login as a ValidationError): it is theirs to share, as above.
          const raced = err instanceof PartnerError && !err.retryable ? await ownerLogin(ctx.admin.email) : undefined;
          if (!raced) throw err;
          await grant((await readUser(raced))!, companyId, groups);
          id = raced;
        }
      }
      const formers = formerOwners<number>(ctx.externalIds, id!);
      if (formers.length) {
        // A login found was recorded with them above; one made here is now.
        if (id !== userId) await ctx.checkpoint({ user_id: id, ...formerOwnersRecord(formers) });
        await revokeEach(formers, companyId);
      }
      return {
        externalIds: { company_id: companyId, user_id: id, ...(formers.length ? { former_user_ids: [] } : {}) },
        credentials: { login: ctx.admin.email },
      };
    },
    async suspend(ctx) {
      // A tenant database stays; the db service has no way to lock one (README).
      if (mode === 'database') return;
      const [user, companyId] = await owner(ctx);
      if (!companyId || !(await companyExists(companyId))) return;
      if (user) await revoke(user, companyId);
      // Former owners a failed run left with the company too, and the current owner's
      // login where a hand-over made it and lost the answer (its id not recorded yet).
      const current = ctx.admin ? await ownerLogin(ctx.admin.email) : undefined;
      const others = formerOwners<number>(ctx.externalIds, user?.id ?? -1);
      if (current !== undefined && current !== user?.id && !others.includes(current)) others.push(current);
      await revokeEach(others, companyId);
    },
    async resume(ctx) {
      if (mode === 'database') return;
      // Only the current owner's login gets the company back: the recorded one may be a
      // former owner's (the owner changed while the tenant was suspended, when no run
      // takes the company from them), who would have it again until ensure — which runs
      // next, grants a new owner and revokes former ones — got that far. A company
      // deleted at Odoo meanwhile: ensure makes it again.
      const current = ctx.admin ? await ownerLogin(ctx.admin.email) : undefined;
      const companyId = await tenantCompany(ctx);
      const user = current ? await readUser(current) : undefined;
      if (user && companyId && await companyExists(companyId)) await grant(user, companyId);
    },
    async remove(ctx) {
      if (mode === 'database') {
        // Only the tenant's own (dbName: never a database another tenant records).
        const name = await dbName(ctx, ctx.credentials as { database?: string } | null);
        await t.db('drop', [config.masterPassword, name]); // false when already gone
        return;
      }
      // A company whose create answer was lost has no id here: found by its name (never
      // another tenant's).
      const companyId = await tenantCompany(ctx);
      if (!companyId || !(await companyExists(companyId))) return;
      // Every active user of the company loses it (the owner included), then the company
      // is archived — refused while it is an active user's default company.
      const users = await t.call('res.users', 'search_read', [[
        ['company_ids', 'in', [companyId]],
        ['login', '!=', config.login],
      ]], { fields: USER_FIELDS }) as UserRow[];
      for (const user of users) await revoke(user, companyId);
      await t.call('res.company', 'write', [[companyId], { active: false, name: removedName(ctx) }]);
    },
    async check(ctx) {
      if (mode === 'database') {
        return ctx.externalIds.database_state === 'ready' && Boolean(await t.db('db_exist', [await dbName(ctx)]));
      }
      const [user, companyId] = await owner(ctx);
      if (!user || !companyId || !user.active || !user.company_ids.includes(companyId)) return false;
      return (await findOne('res.company', [['id', '=', companyId], ['active', '=', true]])) !== undefined;
    },
  };
}
