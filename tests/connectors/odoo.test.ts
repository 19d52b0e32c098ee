// The Odoo connector against a stand-in that answers as Odoo's own controllers and models
// do (tests/partners/odoo.ts names the source of each behaviour).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { odooConnector, type OdooConfig } from '../../shared/connectors/odoo.ts';
import { passwordUnsettled, shownCredentials } from '../../shared/connectors/types.ts';
import { OdooStandIn } from '../partners/odoo.ts';
import { check, settle, step, tenant } from './harness.ts';

let odoo: OdooStandIn;
const connector = (opts: Partial<OdooConfig> = {}) =>
  odooConnector({ url: odoo.url, db: 'main', login: odoo.login, key: odoo.key, masterPassword: odoo.masterPassword, timeoutMs: 3_000, ...opts });
const users = () => [...odoo.tables['res.users'].values()];
const userOf = (email: string) => users().find((u) => u.login === email)!;
const company = (id: number) => odoo.tables['res.company'].get(id)!;

beforeAll(async () => {
  odoo = await OdooStandIn.start();
});
afterEach(() => {
  odoo.server.resetFaults();
  Object.assign(odoo, { version: 18, gated: false, useDeprecatedServices: false, createDbMs: 0, lockWrites: 0, beforeWrite: undefined, beforeCreate: undefined });
  odoo.unreachable.clear();
  odoo.refusing = false;
});
afterAll(() => odoo.server.close());

describe('errors', () => {
  it('a release that gates /jsonrpc (NotFound inside HTTP 200) fails permanently and says what to set — never retried forever', async () => {
    odoo.gated = true;
    const err = await step(connector(), tenant('od-gated'), 'ensure').catch((e) => e);
    expect(err).toMatchObject({ retryable: false, message: expect.stringContaining('rpc.use_deprecated_services') });
    expect(err.message).toContain('json2');
    odoo.useDeprecatedServices = true;
    await step(connector(), tenant('od-gated-ok'), 'ensure');
  });

  it('over JSON-2, LockError (409) is transient and a ValueError (500) permanent', async () => {
    const t = tenant('od-j2');
    odoo.lockWrites = 1;
    await expect(step(connector({ transport: 'json2' }), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 409, message: expect.stringContaining('LockError') });
    await settle(connector({ transport: 'json2' }), t, 'ensure');
    expect(userOf(t.admin!.email)).toBeDefined();
    // ValueError comes back as 500: permanent. Other 500s (a database error) are transient.
    odoo.raiseNext = 'builtins.ValueError';
    await expect(step(connector({ transport: 'json2' }), t, 'ensure')).rejects.toMatchObject({ retryable: false, status: 500, message: expect.stringContaining('ValueError') });
    odoo.raiseNext = 'psycopg2.OperationalError';
    await expect(step(connector({ transport: 'json2' }), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 500 });
    // What a write of a field the server lacks answers (groups_id on 19.0).
    odoo.version = 19;
    const res = await fetch(`${odoo.url}/json/2/res.users/write`, {
      method: 'POST', headers: { authorization: `bearer ${odoo.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ids: [userOf(t.admin!.email).id], vals: { groups_id: [[4, 1]] } }),
    });
    expect([res.status, (await res.json()).name]).toEqual([500, 'builtins.ValueError']);
  });

  it('5xx, 429 with Retry-After, a timeout and a dropped connection are retried without duplicates', async () => {
    const t = tenant('od-faults');
    odoo.server.faults = { ...odoo.server.faults, fail5xx: 1, rateLimit: 1, retryAfterSeconds: 11 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 503 });
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true, status: 429, retryAfterSeconds: 11 });
    // The answers of the creates themselves lost (the company made, then the user made):
    // every call is POST /jsonrpc, so the fault is aimed by the call in the body.
    const dropped = () => odoo.server.log.filter((l) => l.status === 'dropped').length;
    const droppedBefore = dropped();
    odoo.server.faults = { ...odoo.server.faults, match: /^POST \/jsonrpc$/, bodyMatch: /"res\.(company|users)","create"/, dropAfterWork: 2 };
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true });
    await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true });
    expect(dropped() - droppedBefore).toBe(2);
    odoo.server.faults = { ...odoo.server.faults, bodyMatch: undefined, slow: 1, slowMs: 1_000 };
    await expect(step(connector({ timeoutMs: 250 }), t, 'ensure')).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('timed out') });
    await settle(connector(), t, 'ensure');
    expect(users().filter((u) => u.login === t.admin!.email)).toHaveLength(1);
    // One company for the tenant, under any name (a second would take the unique one).
    expect([...odoo.tables['res.company'].values()].filter((c) => String(c.name).startsWith('Tenant od-faults'))
      .map((c) => c.name)).toEqual(['Tenant od-faults (od-faults)']);
  });
  it("a company create whose answer was lost is found at the retry although the tenant was renamed meanwhile: no second company", async () => {
    const t = tenant('od-renamed-retry');
    const original = odoo.handle.bind(odoo);
    odoo.handle = async (method, path, headers, body) => {
      const reply = await original(method, path, headers, body);
      // The company is made at Odoo; the answer never arrives.
      const text = JSON.stringify(body);
      if (text.includes('"res.company"') && text.includes('"create"')) return { status: 502, body: 'Bad Gateway', headers: { 'content-type': 'text/plain' } };
      return reply;
    };
    try {
      await expect(step(connector(), t, 'ensure')).rejects.toMatchObject({ retryable: true });
    } finally {
      odoo.handle = original;
    }
    t.tenant.name = 'Renamed Since'; // a tenant admin renames it before the retry
    await step(connector(), t, 'ensure');
    const ours = [...odoo.tables['res.company'].values()].filter((c) => String(c.name).includes('(od-renamed-retry)'));
    expect(ours.map((c) => c.id)).toEqual([t.externalIds.company_id]);
    expect(t.externalIds.company_requested).toBeNull();
  });
  // Not JSON at all: partnerFetch says so for every partner (a JSON answer that is not
  // JSON-RPC's is the connector's own check).
  for (const [transport, says] of [['jsonrpc', 'the answer is not JSON'], ['json2', 'not JSON']] as const) {
    it(`a 200 that is not Odoo's answer (a proxy page) is retryable over ${transport}, not a refused login or an empty search`, async () => {
      const original = odoo.handle.bind(odoo);
      let served = false;
      odoo.handle = (method, path, headers, body) => {
        if (served) return original(method, path, headers, body);
        served = true;
        return { status: 200, body: '<html><body>Down for maintenance</body></html>', headers: { 'content-type': 'text/html' } };
      };
      const t = tenant(`od-proxy-${transport}`);
      try {
        const err = await step(connector({ transport }), t, 'ensure').catch((e) => e);
        expect(err).toMatchObject({ retryable: true, message: expect.stringContaining(says) });
      } finally {
        odoo.handle = original;
      }
      await step(connector({ transport }), t, 'ensure'); // the next attempt goes through
      expect([...odoo.tables['res.company'].values()].filter((c) => c.name === `${t.tenant.name} (${t.tenant.slug})`)).toHaveLength(1);
    });
  }
  it("a JSON 200 that is not JSON-RPC's answer (neither result nor error) is retryable: the connector's own check", async () => {
    const original = odoo.handle.bind(odoo);
    let served = false;
    odoo.handle = (method, path, headers, body) => {
      if (served) return original(method, path, headers, body);
      served = true;
      return { status: 200, body: JSON.stringify({ status: 'maintenance' }), headers: { 'content-type': 'application/json' } };
    };
    const t = tenant('od-not-jsonrpc');
    try {
      const err = await step(connector({ transport: 'jsonrpc' }), t, 'ensure').catch((e) => e);
      expect(err).toMatchObject({ retryable: true, message: expect.stringContaining('not a JSON-RPC response') });
    } finally {
      odoo.handle = original;
    }
    await step(connector({ transport: 'jsonrpc' }), t, 'ensure');
    expect(await check(connector({ transport: 'jsonrpc' }), t)).toBe(true);
  });
});

describe('the owner', () => {
  it('gets the configured admin groups on the field this server has: groups_id (18) or group_ids (19)', async () => {
    for (const version of [18, 19]) {
      odoo.version = version;
      for (const transport of ['jsonrpc', 'json2'] as const) {
        const t = tenant(`od-groups-${version}-${transport}`);
        await step(connector({ transport, adminGroups: ['base.group_user', 'base.group_system'] }), t, 'ensure');
        const field = version >= 19 ? 'group_ids' : 'groups_id';
        expect(userOf(t.admin!.email)[field], `${version} ${transport}`).toEqual(expect.arrayContaining([odoo.groupId('base.group_system')]));
      }
    }
    // The default: an internal user, not a database administrator (a shared database).
    odoo.version = 18;
    const plain = tenant('od-groups-default');
    await step(connector(), plain, 'ensure');
    expect(userOf(plain.admin!.email).groups_id).toEqual([odoo.groupId('base.group_user')]);
  });

  it('an owner of several tenants whose default company is the suspended one: the default moves first, then the company goes; resume brings it back', async () => {
    const a = tenant('od-multi-a');
    await step(connector(), a, 'ensure');
    const b = tenant('od-multi-b', a.admin!.email);
    await step(connector(), b, 'ensure');
    const u = userOf(a.admin!.email);
    expect(u.company_id).toBe(a.externalIds.company_id); // created with a's company as default
    await step(connector(), a, 'suspend');
    expect(u).toMatchObject({ active: true, company_id: b.externalIds.company_id, company_ids: [b.externalIds.company_id] });
    expect(await check(connector(), a)).toBe(false);
    expect(await check(connector(), b)).toBe(true);
    await step(connector(), a, 'suspend');
    await step(connector(), a, 'resume');
    expect(u.company_ids.sort()).toEqual([a.externalIds.company_id, b.externalIds.company_id].sort());
    expect(await check(connector(), a)).toBe(true);
  });

  it('a resume gives the company to the current owner, not to one who left while the tenant was suspended', async () => {
    const a = tenant('od-left-suspended');
    await step(connector(), a, 'ensure');
    const first = userOf(a.admin!.email);
    await step(connector(), a, 'suspend');
    expect(first).toMatchObject({ active: false });
    a.admin = { email: 'next@od-left-suspended.test', name: 'Ned Next' };
    await step(connector(), a, 'resume');
    expect(first.active && first.company_ids.includes(a.externalIds.company_id as number)).toBe(false);
    // Ensure, next: the new owner has it, the former one still not.
    await step(connector(), a, 'ensure');
    expect(userOf('next@od-left-suspended.test')).toMatchObject({ active: true });
    expect(userOf('next@od-left-suspended.test').company_ids).toContain(a.externalIds.company_id);
    expect(first.active && first.company_ids.includes(a.externalIds.company_id as number)).toBe(false);
    // The same owner throughout: resumed as before.
    await step(connector(), a, 'suspend');
    await step(connector(), a, 'resume');
    expect(await check(connector(), a)).toBe(true);
  });

  it("two tenants of one owner suspended at once: a write the other's made stale is computed again from the login as it is, not a permanent failure", async () => {
    const a = tenant('od-twice-a');
    await step(connector(), a, 'ensure');
    const b = tenant('od-twice-b', a.admin!.email);
    await step(connector(), b, 'ensure');
    const u = userOf(a.admin!.email);
    const [ca, cb] = [a.externalIds.company_id, b.externalIds.company_id];
    expect([u.company_id, [...u.company_ids].sort()]).toEqual([ca, [ca, cb].sort()]);
    // B's suspension, on another worker, commits between A's read of the login and A's write.
    odoo.beforeWrite = () => void (u.company_ids = [ca]);
    await step(connector(), a, 'suspend');
    // Read again, the login has no other company: archived, none of the two left to it.
    expect(u).toMatchObject({ active: false });
    expect(odoo.beforeWrite).toBeUndefined();
  });

  it("a suspension takes the company from the current owner's login too, one a hand-over made and did not record", async () => {
    const t = tenant('od-lost-handover');
    await step(connector(), t, 'ensure');
    const companyId = t.externalIds.company_id;
    // The owner changed; the run making the new owner's login (with the company) lost its answer.
    const [made] = await (await fetch(`${odoo.url}/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'call', id: 1, params: { service: 'object', method: 'execute_kw', args: [
        'main', 2, odoo.key, 'res.users', 'create',
        [[{ name: 'Nia', login: 'next@od-lost-handover.test', company_id: companyId, company_ids: [[6, 0, [companyId]]] }]],
      ] } }),
    }).then((r) => r.json())).result;
    t.admin = { email: 'next@od-lost-handover.test', name: 'Nia' };
    await step(connector(), t, 'suspend');
    const next = users().find((u) => u.id === made)!;
    expect(next.active === false || !next.company_ids.includes(companyId)).toBe(true);
  });

  it("removing a tenant whose company is the default of its owner and of the tenant's other users archives the company; the owner keeps their other tenant", async () => {
    const a = tenant('od-rm-a');
    await step(connector(), a, 'ensure');
    const b = tenant('od-rm-b', a.admin!.email);
    await step(connector(), b, 'ensure');
    // A colleague the tenant made in Odoo, with a's company only.
    const colleague = { id: 900001, active: true, login: 'colleague@od-rm-a.test', name: 'C', company_id: a.externalIds.company_id, company_ids: [a.externalIds.company_id] };
    odoo.tables['res.users'].set(colleague.id, colleague);
    await step(connector(), a, 'remove');
    expect(company(a.externalIds.company_id).active).toBe(false);
    expect(userOf(a.admin!.email)).toMatchObject({ active: true, company_id: b.externalIds.company_id, company_ids: [b.externalIds.company_id] });
    expect(colleague.active).toBe(false);
    await step(connector(), a, 'remove'); // again: nothing left to do, no error
    expect(await check(connector(), a)).toBe(false);
    expect(await check(connector(), b)).toBe(true);
  });

  it('two tenants of one owner provisioned at once by two workers share the login the faster one made', async () => {
    const a = tenant('od-race-a');
    const b = tenant('od-race-b', a.admin!.email);
    const original = odoo.handle.bind(odoo);
    let raced = false;
    // a's worker looked the login up and found none; before its create arrives, b's worker
    // (the same owner) makes it.
    odoo.handle = async (method, path, headers, body) => {
      const args = body?.params?.args;
      if (!raced && args?.[3] === 'res.users' && args?.[4] === 'create') {
        raced = true;
        await step(connector(), b, 'ensure');
      }
      return await original(method, path, headers, body);
    };
    try {
      await step(connector(), a, 'ensure');
    } finally {
      odoo.handle = original;
    }
    expect(raced).toBe(true);
    expect(users().filter((u) => u.login === a.admin!.email)).toHaveLength(1);
    expect(a.externalIds.user_id).toBe(b.externalIds.user_id);
    expect(userOf(a.admin!.email).company_ids.sort()).toEqual([a.externalIds.company_id, b.externalIds.company_id].sort());
  });

  it("a company create that timed out and committed at Odoo after the retry's lookup: the retry's create is refused by the unique name, and the company is found by it", async () => {
    const t = tenant('od-late-company');
    // The first create committed only now, between the retry's lookup and its create.
    odoo.beforeCreate = () => {
      const id = Math.max(0, ...odoo.tables['res.company'].keys(), ...odoo.tables['res.users'].keys()) + 1000;
      odoo.tables['res.company'].set(id, { id, name: 'Tenant od-late-company (od-late-company)', active: true });
    };
    await step(connector(), t, 'ensure');
    const named = [...odoo.tables['res.company'].values()].filter((c) => c.name === 'Tenant od-late-company (od-late-company)');
    expect(named).toHaveLength(1);
    expect(t.externalIds.company_id).toBe(named[0].id);
    expect(userOf(t.admin!.email).company_ids).toContain(named[0].id);
  });

  it('removing a tenant whose company id was never recorded (the create answer lost) finds the company by its name', async () => {
    const made = tenant('od-rm-lost');
    await step(connector(), made, 'ensure');
    const companyId = made.externalIds.company_id as number;
    // The same tenant as the job saw it when the answer never came: no id at all.
    const lost: typeof made = { ...made, externalIds: {} };
    expect(lost.externalIds.company_id).toBeUndefined();
    await step(connector(), lost, 'remove');
    expect(company(companyId).active).toBe(false);
    // Their only company: the owner's login is closed with it.
    expect(userOf(made.admin!.email).active).toBe(false);
  });

  it("suspending and resuming a tenant whose owner's or company's id was never recorded (an answer lost) finds them again", async () => {
    const made = tenant('od-susp-lost');
    await step(connector(), made, 'ensure');
    const companyId = made.externalIds.company_id as number;
    for (const lost of [{ company_id: companyId }, {}]) {
      const t: typeof made = { ...made, externalIds: { ...lost } };
      await step(connector(), t, 'suspend');
      // Their only company: the owner's login is closed with it.
      expect(userOf(made.admin!.email).active, JSON.stringify(lost)).toBe(false);
      await step(connector(), { ...made, externalIds: { ...lost } }, 'resume');
      expect(userOf(made.admin!.email)).toMatchObject({ active: true, company_ids: [companyId] });
    }
  });

  it('a company deleted at Odoo is made again by the drift repair, not granted by its old id', async () => {
    const t = tenant('od-drift-gone');
    await step(connector(), t, 'ensure');
    const gone = t.externalIds.company_id as number;
    odoo.tables['res.company'].delete(gone); // an operator deleted it at Odoo
    expect(await check(connector(), t)).toBe(false);
    await step(connector(), t, 'ensure');
    expect(t.externalIds.company_id).not.toBe(gone);
    expect(company(t.externalIds.company_id)).toMatchObject({ active: true, name: 'Tenant od-drift-gone (od-drift-gone)' });
    expect(await check(connector(), t)).toBe(true);
  });

  it('a company deleted at Odoo counts as removed, and as nothing to suspend or resume (ensure makes it again)', async () => {
    const t = tenant('od-rm-gone');
    await step(connector(), t, 'ensure');
    odoo.tables['res.company'].delete(t.externalIds.company_id as number); // an operator deleted it at Odoo
    // Writing to it would be MissingError, a permanent error: the service failed for good.
    await step(connector(), t, 'suspend');
    await step(connector(), t, 'resume');
    await step(connector(), t, 'remove');
    // Its owner, whose only company it was, is left as the suspension left them.
    expect(userOf(t.admin!.email)).toBeDefined();
  });

  it("a tenant given another's old slug and name gets a company of its own, and its removal leaves the other's alone", async () => {
    const a = tenant('od-taken');
    await step(connector(), a, 'ensure');
    const aCompany = a.externalIds.company_id as number;
    a.tenant.slug = 'od-taken-2'; // a platform admin changed it; the company keeps its name
    const b = tenant('od-taken', 'owner@od-taken-b.test');
    await step(connector(), b, 'ensure');
    expect(b.externalIds.company_id).not.toBe(aCompany);
    expect(company(b.externalIds.company_id).name).toBe(`Tenant od-taken (od-taken, ${b.tenant.id.slice(0, 8)})`);
    expect(userOf('owner@od-taken-b.test').company_ids).toEqual([b.externalIds.company_id]);
    // b's create answer lost: its removal by name finds its own company, not a's.
    await step(connector(), { ...b, externalIds: {} }, 'remove');
    expect(company(aCompany)).toMatchObject({ active: true, name: 'Tenant od-taken (od-taken)' });
    expect(company(b.externalIds.company_id).active).toBe(false);
    expect(await check(connector(), a)).toBe(true);
  });

  it("a removed tenant's company goes to no later tenant of the same name and slug; the tenant itself gets it back", async () => {
    const a = tenant('od-reuse');
    await step(connector(), a, 'ensure');
    const companyId = a.externalIds.company_id as number;
    await step(connector(), a, 'remove');
    expect(company(companyId)).toMatchObject({ active: false, name: `Tenant od-reuse (od-reuse) [removed tenant ${a.tenant.id}]` });
    // Its service enabled again, even with the company's id lost: its company, back under its name.
    const again: typeof a = { ...a, externalIds: {} };
    await step(connector(), again, 'ensure');
    expect(again.externalIds.company_id).toBe(companyId);
    expect(company(companyId)).toMatchObject({ active: true, name: 'Tenant od-reuse (od-reuse)' });
    await step(connector(), again, 'remove');
    // The tenant is then deleted and purged; a new one takes its slug and name.
    const later = tenant('od-reuse', 'someone.else@od-reuse-2.test');
    await step(connector(), later, 'ensure');
    expect(later.externalIds.company_id).not.toBe(companyId);
    expect(company(companyId).active).toBe(false);
    expect(userOf('someone.else@od-reuse-2.test').company_ids).toEqual([later.externalIds.company_id]);
  });

  it('an owner whose only company was suspended comes back with only the new tenant when another tenant is created for them', async () => {
    const a = tenant('od-arch-a');
    await step(connector(), a, 'ensure');
    await step(connector(), a, 'suspend');
    const u = userOf(a.admin!.email);
    expect(u.active).toBe(false);
    const b = tenant('od-arch-b', a.admin!.email);
    await step(connector(), b, 'ensure');
    expect(u).toMatchObject({ active: true, company_id: b.externalIds.company_id, company_ids: [b.externalIds.company_id] });
    await step(connector(), a, 'resume');
    expect(u.company_ids.sort()).toEqual([a.externalIds.company_id, b.externalIds.company_id].sort());
  });
});

describe('database mode', () => {
  it('a create_database slower than the call timeout is not provisioned until the database is usable', async () => {
    odoo.createDbMs = 1_000;
    const t = tenant('od-db-slow');
    const c = connector({ mode: 'database', createDatabaseTimeoutMs: 200 });
    // The call times out while Odoo goes on building; db_exist is already true.
    await expect(step(c, t, 'ensure')).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('still being built') });
    expect(t.externalIds).toMatchObject({ database: 'tenant_od_db_slow', database_state: 'creating' });
    expect(odoo.databases.get('tenant_od_db_slow')).toMatchObject({ ready: false });
    await expect(step(c, t, 'ensure')).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('still being built') });
    expect(await check(c, t)).toBe(false);
    await new Promise((r) => setTimeout(r, 1_100));
    await step(c, t, 'ensure');
    expect(t.externalIds.database_state).toBe('ready');
    expect(t.credentials).toMatchObject({ login: t.admin!.email, database: 'tenant_od_db_slow', password: odoo.databases.get('tenant_od_db_slow')!.password });
    expect(await check(c, t)).toBe(true);
    // Removal drops it, and again is harmless.
    await step(c, t, 'remove');
    await step(c, t, 'remove');
    expect(odoo.databases.has('tenant_od_db_slow')).toBe(false);
  });

  it("a new owner takes the database's administrator over, with a password of their own; the former one's no longer signs in", async () => {
    const c = connector({ mode: 'database' });
    const t = tenant('od_db_owner');
    await settle(c, t, 'ensure');
    const db = () => odoo.databases.get('tenant_od_db_owner')!;
    const former = { ...t.credentials! };
    expect(db()).toMatchObject({ login: former.login, password: former.password });
    // The owner left: the next run hands the administrator over.
    t.admin = { email: 'next@od_db_owner.test', name: 'Nia Next' };
    await step(c, t, 'ensure');
    expect(t.credentials).toEqual({ login: 'next@od_db_owner.test', password: expect.any(String), database: 'tenant_od_db_owner' });
    expect(t.credentials!.password).not.toBe(former.password);
    expect(db()).toMatchObject({ login: 'next@od_db_owner.test', password: t.credentials!.password });
    // Told again, nothing changes.
    const settled = { ...t.credentials! };
    await step(c, t, 'ensure');
    expect(t.credentials).toEqual(settled);
    // A run that applied the next hand-over and lost the answer: the retry finds it applied.
    t.admin = { email: 'third@od_db_owner.test', name: 'Tao Third' };
    t.credentials = { ...settled, login: 'third@od_db_owner.test', password: 'applied-pw', password_pending: true, handing_over: { login: settled.login, password: settled.password } };
    Object.assign(db(), { login: 'third@od_db_owner.test', password: 'applied-pw' });
    await step(c, t, 'ensure');
    expect(t.credentials).toEqual({ login: 'third@od_db_owner.test', password: 'applied-pw', database: 'tenant_od_db_owner' });
    // Someone changed the administrator's password at Odoo: neither signs in, and it says what to do.
    t.admin = { email: 'fourth@od_db_owner.test', name: 'Fay Fourth' };
    db().password = 'changed-at-odoo';
    const refused = await step(c, t, 'ensure').catch((e) => e);
    expect(refused).toMatchObject({ retryable: false, message: expect.stringContaining('neither the former owner') });
    expect(t.credentials).toMatchObject({ password_pending: true, login: 'fourth@od_db_owner.test' });
    // Pending, it is shown to nobody; and never with the login it replaces.
    expect(passwordUnsettled(t.credentials!)).toBe(true);
    expect(Object.keys(shownCredentials(t.credentials!)).sort()).toEqual(['database', 'login', 'password']);
  });

  it('an owner who changed again while a hand-over waited for a retry gets the administrator in turn, not one left with the first new owner\'s address', async () => {
    const c = connector({ mode: 'database' });
    const t = tenant('od_db_twice');
    await settle(c, t, 'ensure');
    const db = () => odoo.databases.get('tenant_od_db_twice')!;
    const first = { ...t.credentials! };
    // A run toward B recorded its hand-over and failed before Odoo saw it; then B left too.
    t.credentials = { login: 'b@od_db_twice.test', password: 'for-b', database: 'tenant_od_db_twice', password_pending: true, handing_over: { login: first.login, password: first.password } };
    t.admin = { email: 'c@od_db_twice.test', name: 'Cy' };
    await step(c, t, 'ensure');
    expect(t.credentials).toEqual({ login: 'c@od_db_twice.test', password: expect.any(String), database: 'tenant_od_db_twice' });
    expect(t.credentials!.password).not.toBe('for-b');
    expect(db()).toMatchObject({ login: 'c@od_db_twice.test', password: t.credentials!.password });
    const settled = { ...t.credentials! };
    await step(c, t, 'ensure');
    expect(t.credentials).toEqual(settled);
  });

  it("a new owner who already has a user in the database gets the administrator with its login kept and a new password", async () => {
    const c = connector({ mode: 'database' });
    const t = tenant('od_db_colleague');
    await settle(c, t, 'ensure');
    const db = () => odoo.databases.get('tenant_od_db_colleague')!;
    const former = { ...t.credentials! };
    db().otherLogins = ['colleague@od_db_colleague.test']; // the former owner added them
    t.admin = { email: 'colleague@od_db_colleague.test', name: 'Col League' };
    await step(c, t, 'ensure');
    expect(t.credentials).toEqual({
      login: former.login, password: expect.any(String), database: 'tenant_od_db_colleague', owner: 'colleague@od_db_colleague.test',
    });
    expect(t.credentials!.password).not.toBe(former.password);
    expect(db()).toMatchObject({ login: former.login, password: t.credentials!.password });
    // Theirs now: the next run changes nothing.
    const settled = { ...t.credentials! };
    await step(c, t, 'ensure');
    expect(t.credentials).toEqual(settled);
  });

  it("a ready database Odoo cannot connect to for a while (db_exist answers false) stays ready: retried, never rebuilt nor called half-built", async () => {
    const c = connector({ mode: 'database' });
    const t = tenant('od_db_unreachable');
    await settle(c, t, 'ensure');
    const db = () => odoo.databases.get('tenant_od_db_unreachable')!;
    const ready = { ...t.externalIds };
    expect(ready).toMatchObject({ database_state: 'ready' });
    // The owner set their own password at Odoo (their right); then Odoo's Postgres refuses connections.
    db().password = 'the-owners-own';
    // The database refuses connections (its create says it exists), or Odoo's Postgres
    // refuses every one (its create fails too).
    odoo.unreachable.add('tenant_od_db_unreachable');
    for (const refusing of [false, true, true]) {
      odoo.refusing = refusing;
      const r = await step(c, t, 'ensure').catch((e) => e);
      expect(r, String(refusing)).toMatchObject({ retryable: true, message: expect.stringContaining('cannot connect') });
      expect(t.externalIds).toEqual(ready);
    }
    odoo.refusing = false;
    odoo.unreachable.clear();
    await step(c, t, 'ensure');
    expect(t.externalIds).toMatchObject({ database_state: 'ready' });
    expect(t.externalIds.database_requested_at).toBe(ready.database_requested_at);
    expect(db().password).toBe('the-owners-own');
    // Dropped at Odoo: made again, and building from now.
    odoo.databases.delete('tenant_od_db_unreachable');
    await step(c, t, 'ensure');
    expect(odoo.databases.get('tenant_od_db_unreachable')).toMatchObject({ ready: true, login: t.admin!.email });
    expect(t.externalIds).toMatchObject({ database_state: 'ready' });
  });

  it('a database that never becomes usable fails permanently after the deadline, saying to drop it', async () => {
    const t = tenant('od-db-broken');
    odoo.databases.set('tenant_od_db_broken', { ready: false, login: 'x', password: 'y', modules: [] });
    t.externalIds = { database: 'tenant_od_db_broken', database_state: 'creating', database_requested_at: new Date(Date.now() - 3_600_000).toISOString() };
    await expect(step(connector({ mode: 'database' }), t, 'ensure')).rejects.toMatchObject({ retryable: false, message: expect.stringContaining('drop it') });
  });

  it("keeps the tenant's database after its slug changes: no second database, and removal drops the one it has", async () => {
    const c = connector({ mode: 'database' });
    const t = tenant('od-db-renamed');
    await step(c, t, 'ensure');
    expect(t.externalIds).toMatchObject({ database: 'tenant_od_db_renamed', database_state: 'ready' });
    t.tenant.slug = 'od-db-renamed-2'; // a platform admin changed it
    expect(await check(c, t)).toBe(true);
    await step(c, t, 'ensure');
    expect(t.externalIds.database).toBe('tenant_od_db_renamed');
    expect(odoo.databases.has('tenant_od_db_renamed_2')).toBe(false);
    await step(c, t, 'remove');
    expect(odoo.databases.has('tenant_od_db_renamed')).toBe(false);
  });

  it("a tenant given another's old slug gets a database of its own, and its removal leaves the other's alone", async () => {
    const c = connector({ mode: 'database' });
    const a = tenant('od-db-taken');
    await step(c, a, 'ensure');
    a.tenant.slug = 'od-db-taken-2';
    const b = tenant('od-db-taken', 'owner@od-db-taken-b.test');
    await step(c, b, 'ensure');
    expect(b.externalIds.database).toBe(`tenant_od_db_taken_${b.tenant.id.slice(0, 8)}`);
    // Removed before anything was recorded: nothing of a's goes.
    await step(c, tenant('od-db-taken', 'third@od-db-taken.test'), 'remove');
    await step(c, b, 'remove');
    expect(odoo.databases.has('tenant_od_db_taken')).toBe(true);
    expect(odoo.databases.has(b.externalIds.database)).toBe(false);
    expect(await check(c, a)).toBe(true);
  });

  it("a tenant enabled again does not adopt the database its record names once another tenant has it", async () => {
    const c = connector({ mode: 'database' });
    const a = tenant('od-db-adopt');
    await step(c, a, 'ensure');
    await step(c, a, 'remove'); // dropped; the record keeps its name
    a.tenant.slug = 'od-db-adopt-2';
    // While a's service is removed (not counted), another tenant takes the name.
    const holder = a.externalIds;
    a.externalIds = {};
    const b = tenant('od-db-adopt', 'owner@od-db-adopt-b.test');
    await step(c, b, 'ensure');
    expect(b.externalIds.database).toBe('tenant_od_db_adopt');
    a.externalIds = holder;
    await step(c, a, 'ensure');
    expect(a.externalIds.database).not.toBe('tenant_od_db_adopt');
    await step(c, a, 'remove');
    expect(odoo.databases.has('tenant_od_db_adopt')).toBe(true);
  });

  it('on a release that gates /jsonrpc, a built database (its registry answers) counts as usable', async () => {
    odoo.gated = true;
    const t = tenant('od-db-gated');
    await step(connector({ mode: 'database' }), t, 'ensure');
    expect(t.externalIds.database_state).toBe('ready');
  });
});
