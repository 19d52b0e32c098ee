// Odoo: a company and its admin user per tenant in a shared database (default), or a
// database per tenant. Two transports behind one small interface: the legacy
// /jsonrpc (16–18; errors arrive inside HTTP 200 and are mapped by their data.name)
// and JSON-2 (19+: POST /json/2/<model>/<method>, bearer key, X-Odoo-Database).
import { generatePassword } from '../crypto.ts';
import { type Connector, PartnerError, partnerFetch, type ProvisionContext } from './types.ts';

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
}

// Odoo exceptions that retrying cannot fix.
const PERMANENT = [
  'AccessDenied',
  'AccessError',
  'ValidationError',
  'UserError',
  'MissingError',
  'ValueError',
];

interface Transport {
  call(model: string, method: string, args: unknown[], kwargs?: Record<string, unknown>): Promise<unknown>;
  db(method: string, args: unknown[]): Promise<unknown>;
}

function jsonRpc(config: OdooConfig): Transport {
  let uid: number | undefined;
  const rpc = async (service: string, method: string, args: unknown[]) => {
    const { body } = await partnerFetch('odoo', `${config.url.replace(/\/$/, '')}/jsonrpc`, {
      method: 'POST',
      body: { jsonrpc: '2.0', method: 'call', params: { service, method, args }, id: Date.now() },
      timeoutMs: config.timeoutMs,
    }) as {
      body: {
        result?: unknown;
        error?: { code: number; message: string; data?: { name?: string; message?: string } };
      };
    };
    if (body.error) {
      const name = body.error.data?.name ?? '';
      const permanent = PERMANENT.some((p) => name.endsWith(p));
      throw new PartnerError(
        'odoo',
        `${name || body.error.message}: ${body.error.data?.message ?? body.error.message}`,
        !permanent,
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
    db: (method, args) => rpc('db', method, args),
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
      try {
        const { body } = await partnerFetch(
          'odoo',
          `${config.url.replace(/\/$/, '')}/json/2/${model}/${method}`,
          {
            method: 'POST',
            headers: { authorization: `bearer ${config.key}`, 'x-odoo-database': config.db },
            body: named,
            timeoutMs: config.timeoutMs,
          },
        );
        return body;
      } catch (err) {
        if (err instanceof PartnerError && err.status && err.status < 500 && err.status !== 429) {
          throw new PartnerError('odoo', err.message, false, err.status);
        }
        throw err;
      }
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

export function odooConnector(config: OdooConfig): Connector {
  const t = (config.transport ?? 'jsonrpc') === 'json2' ? json2(config) : jsonRpc(config);
  const mode = config.mode ?? 'company';
  const companyName = (ctx: ProvisionContext) => `${ctx.tenant.name} (${ctx.tenant.slug})`;
  const dbName = (ctx: ProvisionContext) => `tenant_${ctx.tenant.slug.replace(/-/g, '_')}`;
  const noArchived = { context: { active_test: false } };

  async function findOne(model: string, domain: unknown[]): Promise<number | undefined> {
    const rows = await t.call(model, 'search_read', [domain], {
      fields: ['id'],
      limit: 1,
      ...noArchived,
    }) as { id: number }[];
    return rows[0]?.id;
  }

  /** Suspends or restores the tenant's company for its owner. The owner is a person
   *  found by login, who may work in other tenants' companies too: then only this
   *  company is taken away from them (or given back); otherwise the login is archived. */
  async function setActive(ctx: ProvisionContext, active: boolean) {
    if (mode === 'database') return; // a tenant database stays; its users are the tenant's business
    const userId = ctx.externalIds.user_id as number | undefined;
    const companyId = ctx.externalIds.company_id as number | undefined;
    if (!userId) return;
    const [user] = await t.call('res.users', 'search_read', [[['id', '=', userId]]], {
      fields: ['company_ids'],
      ...noArchived,
    }) as {
      company_ids?: number[];
    }[];
    const others = (user?.company_ids ?? []).filter((id) => id !== companyId);
    if (companyId && others.length) {
      await t.call('res.users', 'write', [[userId], { company_ids: [[active ? 4 : 3, companyId, 0]] }]);
    } else {
      await t.call('res.users', 'write', [[userId], { active }]);
    }
  }

  return {
    service: 'odoo',
    async ensure(ctx) {
      if (!ctx.admin) throw new PartnerError('odoo', 'the tenant has no admin to own the company', false);
      if (mode === 'database') {
        let credentials = ctx.credentials as { login: string; password: string; database: string } | null;
        if (!credentials?.password) {
          credentials = { login: ctx.admin.email, password: generatePassword(), database: dbName(ctx) };
          await ctx.checkpoint({}, credentials);
        }
        if (!(await t.db('db_exist', [dbName(ctx)]))) {
          await t.db('create_database', [
            config.masterPassword,
            dbName(ctx),
            false,
            'en_US',
            credentials.password,
            ctx.admin.email,
            '',
            '',
          ]);
        }
        return { externalIds: { database: dbName(ctx) }, credentials };
      }
      let companyId = ctx.externalIds.company_id as number | undefined ??
        await findOne('res.company', [['name', '=', companyName(ctx)]]);
      if (!companyId) {
        const created = await t.call('res.company', 'create', [[{ name: companyName(ctx) }]]);
        companyId = Array.isArray(created) ? created[0] : created as number;
      }
      await ctx.checkpoint({ company_id: companyId });
      let userId = await findOne('res.users', [['login', '=', ctx.admin.email]]);
      if (userId) {
        // The same person already has a login (another tenant's owner): give it this company.
        await t.call('res.users', 'write', [[userId], { company_ids: [[4, companyId, 0]] }]);
      } else {
        const created = await t.call('res.users', 'create', [[{
          name: ctx.admin.name,
          login: ctx.admin.email,
          email: ctx.admin.email,
          company_id: companyId,
          company_ids: [[6, 0, [companyId]]],
        }]]);
        userId = Array.isArray(created) ? created[0] : created as number;
      }
      return {
        externalIds: { company_id: companyId, user_id: userId },
        credentials: { login: ctx.admin.email },
      };
    },
    suspend: (ctx) => setActive(ctx, false),
    resume: (ctx) => setActive(ctx, true),
    async remove(ctx) {
      if (mode === 'database') {
        await t.db('drop', [config.masterPassword, dbName(ctx)]);
        return;
      }
      // unlink fails on references; archiving is Odoo's removal.
      await setActive(ctx, false);
      const companyId = ctx.externalIds.company_id as number | undefined;
      if (companyId) await t.call('res.company', 'write', [[companyId], { active: false }]);
    },
    async check(ctx) {
      if (mode === 'database') return Boolean(await t.db('db_exist', [dbName(ctx)]));
      const userId = ctx.externalIds.user_id as number | undefined;
      return userId !== undefined && (await findOne('res.users', [['id', '=', userId]])) !== undefined;
    },
  };
}
