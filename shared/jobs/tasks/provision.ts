// provision: brings one tenant's partner service (payload { tenant_id, service }) to its
// desired state through the partner's connector — ensure (and resume), suspend or
// remove — recording partner ids the moment they exist. Queued by trigger in the
// transaction of the change (job key and queue `provision:<tenant>:<service>`), by the
// reconcile pass and by an admin's retry. Partner errors carry retryable/Retry-After;
// permanent ones (401, 403 licence, 422, Odoo AccessDenied) end the job at once and the
// service `failed` with a readable error.
import { isDeepStrictEqual } from 'node:util';
import { connectorsFromEnv } from '../../connectors/index.ts';
import type { ProvisionContext, ProvisionResult, ServiceName } from '../../connectors/types.ts';
import { PartnerError, shownCredentials } from '../../connectors/types.ts';
import { decryptJson, encryptJson } from '../../crypto.ts';
import { asService, type Tx } from '../../db.ts';
import { JobError, LeaseLost, type Task } from '../types.ts';

interface Payload {
  tenant_id: string;
  service: ServiceName;
}

interface Context {
  lease: boolean;
  wait_until: Date | null;
  desired_state: 'active' | 'suspended' | 'removed';
  state: string;
  external_ids: Record<string, unknown>;
  credentials_encrypted: string | null;
  tenant_slug: string;
  tenant_name: string;
  admin_email: string | null;
  admin_name: string | null;
}

export const provision: Task<Payload> = {
  // One partner call at a time per worker: two services of one owner (the same login)
  // are never made at once.
  serial: true,

  async run(job, { worker, deps }) {
    const { tenant_id: tenantId, service } = job.payload;
    const inTenant = <T>(fn: (tx: Tx) => Promise<T>) => asService(tenantId, fn);
    const [s] = await inTenant((tx) => tx<Context>`select * from private.provisioning_context(${job.id}, ${worker})`);
    if (!s) return { gone: 1 }; // the service row is gone: nothing to do
    if (!s.lease) throw new LeaseLost();
    if (s.wait_until) return { deferred: 1 }; // a removal waiting out its grace period

    const connector = (deps.connectors ?? connectorsFromEnv())[service];
    if (!connector) throw new JobError(`${service} is not configured on this deployment`, { retryable: false });

    // Credentials are sealed for this tenant's service and no other row (shared/crypto.ts).
    const owner = { tenantId, service };
    /** The credentials sealed to be stored with the progress, or null: none, the ones
     *  stored already, or ones whose shown part (the login) is unchanged, which are
     *  stored here at once without making them revealable again. Storing credentials
     *  with the progress makes the login revealable once more; a connector's ensure hands
     *  back the same login on every run (a resume, a drift repair) and may bring a new
     *  machine secret (a webhook made again), neither of which may undo the "shown once"
     *  of a password already shown. */
    const sealIfNew = async (credentials: Record<string, unknown> | undefined | null) => {
      if (!credentials || isDeepStrictEqual(credentials, ctx.credentials)) return null;
      const sealed = await encryptJson(credentials, owner);
      if (!ctx.credentials || !isDeepStrictEqual(shownCredentials(credentials), shownCredentials(ctx.credentials))) return sealed;
      const [{ ok }] = await inTenant((tx) => tx`select private.record_service_secrets(${job.id}, ${worker}, ${sealed}) as ok`);
      if (!ok) throw new LeaseLost();
      return null;
    };
    const ctx: ProvisionContext = {
      tenant: { id: tenantId, slug: s.tenant_slug, name: s.tenant_name },
      admin: s.admin_email ? { email: s.admin_email, name: s.admin_name ?? s.admin_email } : null,
      externalIds: { ...s.external_ids },
      credentials: s.credentials_encrypted ? await decryptJson(s.credentials_encrypted, owner) : null,
      async checkpoint(ids, credentials) {
        Object.assign(ctx.externalIds, ids);
        const sealed = await sealIfNew(credentials);
        if (credentials) ctx.credentials = credentials;
        const [{ ok }] = await inTenant((tx) =>
          tx`select private.record_provisioning_progress(${job.id}, ${worker}, ${tx.json(ids)}, ${sealed}) as ok`
        );
        if (!ok) throw new LeaseLost();
      },
      async otherTenantsUsing(key, value) {
        const [{ n }] = await inTenant((tx) =>
          tx<{ n: number }>`select private.partner_id_users(${tenantId}, ${service}, ${key}, ${String(value)}) as n`
        );
        return n;
      },
    };

    try {
      let result: ProvisionResult | void = undefined;
      let state: string;
      if (s.desired_state === 'active') {
        if (s.state === 'suspended') await connector.resume(ctx);
        result = await connector.ensure(ctx);
        state = 'active';
      } else if (s.desired_state === 'suspended') {
        // Also with no id recorded: a create whose answer was lost made an object all the
        // same, which the connector finds by what it made it with (Botpress a tag, n8n and
        // Odoo a name; Chatwoot has no account search: README, known limit).
        result = await connector.suspend(ctx);
        state = 'suspended';
      } else {
        result = await connector.remove(ctx);
        state = 'removed';
      }
      const sealed = await sealIfNew(result?.credentials);
      const [{ ok }] = await inTenant((tx) =>
        tx`select private.finish_provisioning_job(${job.id}, ${worker}, ${state}, ${
          tx.json(result?.externalIds ?? {})
        }, ${sealed}) as ok`
      );
      if (!ok) throw new LeaseLost();
      return { [state]: 1 };
    } catch (err) {
      if (err instanceof LeaseLost) throw err;
      if (err instanceof PartnerError) {
        console.error(`[provision] ${s.tenant_slug}/${service}: ${err.message}`);
        throw err;
      }
      console.error(`[provision] ${s.tenant_slug}/${service}: unexpected`, (err as Error).message);
      throw new JobError(`unexpected error: ${(err as Error).message}`.slice(0, 500));
    }
  },

  async failed(tx, job, outcome, error) {
    await tx`select private.record_provisioning_failure(${job.payload.tenant_id}, ${job.payload.service}, ${error}, ${job.attempts}, ${
      outcome === 'dead'
    })`;
  },
};
