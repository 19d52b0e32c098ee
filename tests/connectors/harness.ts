// Runs a connector step the way the provision task does (shared/jobs/tasks/provision.ts):
// checkpoints merge partner ids and replace credentials at once, the step's result is
// recorded at the end, and an error leaves what was checkpointed.
import type { Connector, ProvisionContext } from '../../shared/connectors/types.ts';

export interface Stored {
  tenant: { id: string; slug: string; name: string };
  admin: { email: string; name: string } | null;
  externalIds: Record<string, any>;
  credentials: Record<string, any> | null;
}

/** Every tenant made here, as the services table would list them (for otherTenantsUsing). */
const made: Stored[] = [];

export function tenant(n: string, email = `owner@${n}.test`): Stored {
  const s: Stored = {
    tenant: { id: crypto.randomUUID(), slug: n, name: `Tenant ${n}` },
    admin: { email, name: 'Olive Owner' },
    externalIds: {},
    credentials: null,
  };
  made.push(s);
  return s;
}

function context(s: Stored): ProvisionContext {
  const ctx: ProvisionContext = {
    tenant: s.tenant,
    admin: s.admin,
    externalIds: { ...s.externalIds },
    credentials: s.credentials,
    checkpoint(ids, credentials) {
      Object.assign(ctx.externalIds, ids);
      Object.assign(s.externalIds, ids);
      if (credentials) ctx.credentials = s.credentials = credentials;
      return Promise.resolve();
    },
    // As private.partner_id_users: other tenants' records of the same partner id.
    otherTenantsUsing(key, value) {
      return Promise.resolve(made.filter((o) => o.tenant.id !== s.tenant.id && String(o.externalIds[key]) === String(value)).length);
    },
  };
  return ctx;
}

export async function step(c: Connector, s: Stored, which: 'ensure' | 'suspend' | 'resume' | 'remove'): Promise<void> {
  const result = await c[which](context(s));
  if (result?.externalIds) Object.assign(s.externalIds, result.externalIds);
  if (result?.credentials) s.credentials = result.credentials;
}

export const check = (c: Connector, s: Stored) => c.check(context(s));

/** Runs a step until it stops failing with a retryable error (as the queue would). */
export async function settle(c: Connector, s: Stored, which: 'ensure' | 'suspend' | 'resume' | 'remove', tries = 8) {
  for (let i = 0; ; i++) {
    try {
      return await step(c, s, which);
    } catch (err) {
      if (i >= tries || !(err as { retryable?: boolean }).retryable) throw err;
    }
  }
}
