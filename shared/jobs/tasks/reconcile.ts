// reconcile (every ten minutes, private.job_schedules):
// 1. re-queues `provision` for services whose known state drifted from the desired one
//    and that have no live job (private.reconcile_tenant_services);
// 2. drift repair: asks each configured partner's connector whether the objects recorded
//    for active services still exist (`check()`), at most a few services per partner per
//    run and each at most once per interval (private.drift_check_candidates). A partner's
//    checks run one after another; partners run side by side. A service whose objects
//    are gone is recorded as drifted, announced (`service.drift_detected`) and queued to
//    be provisioned again, which re-creates what is missing
//    (private.record_service_drift; only if the service still holds the ids and
//    credentials checked). A check that errors (partner down) is no drift: it
//    is logged and tried again after the interval.
import { connectorsFromEnv } from '../../connectors/index.ts';
import type { ProvisionContext, ServiceName } from '../../connectors/types.ts';
import { decryptJson } from '../../crypto.ts';
import { asService } from '../../db.ts';
import { envInt } from '../../env.ts';
import type { Task } from '../types.ts';

interface Candidate {
  tenant_id: string;
  service: ServiceName;
  external_ids: Record<string, unknown>;
  credentials_encrypted: string | null;
  tenant_slug: string;
  tenant_name: string;
}

export const reconcile: Task = {
  async run(_job, { deps }) {
    const queued = await asService(
      null,
      async (tx) => (await tx`select private.reconcile_tenant_services() as n`)[0].n as number,
    );
    const connectors = deps.connectors ?? connectorsFromEnv();
    const services = Object.keys(connectors) as ServiceName[];
    if (!services.length) return { queued };
    const perPartner = deps.driftChecksPerPartner ?? envInt('DRIFT_CHECKS_PER_PARTNER', 5, 0, 100);
    const intervalS = deps.driftCheckIntervalS ?? envInt('DRIFT_CHECK_INTERVAL_S', 3600, 0, 30 * 86_400);
    const due = await asService(
      null,
      (tx) =>
        tx<
          Candidate
        >`select * from private.drift_check_candidates(${services}, ${perPartner}, ${intervalS} * interval '1 second')`,
    );

    const counts = { checked: 0, drifted: 0, check_errors: 0 };
    await Promise.all(services.map(async (service) => {
      for (const c of due.filter((d) => d.service === service)) {
        let present: boolean;
        try {
          const ctx: ProvisionContext = {
            tenant: { id: c.tenant_id, slug: c.tenant_slug, name: c.tenant_name },
            admin: null,
            externalIds: c.external_ids,
            // Sealed for this tenant's service (shared/crypto.ts), as the provision job reads them.
            credentials: c.credentials_encrypted
              ? await decryptJson(c.credentials_encrypted, { tenantId: c.tenant_id, service })
              : null,
            checkpoint: () => Promise.resolve(),
            // As the provision job answers it: without it, a connector takes every name it
            // recorded for someone else's (Odoo's database mode then checked a database
            // it never made, and reported drift on every run).
            async otherTenantsUsing(key, value) {
              const [{ n }] = await asService(
                c.tenant_id,
                (tx) =>
                  tx<{ n: number }>`select private.partner_id_users(${c.tenant_id}, ${service}, ${key}, ${String(value)}) as n`,
              );
              return n;
            },
          };
          present = await connectors[service]!.check(ctx);
        } catch (err) {
          counts.check_errors++;
          console.error(`[reconcile] ${c.tenant_slug}/${service}: check failed: ${(err as Error).message}`);
          continue;
        }
        counts.checked++;
        if (present) continue;
        const detail = `${service} no longer has what was provisioned for this tenant (${
          Object.keys(c.external_ids).join(', ') || 'nothing recorded'
        }); provisioning it again`;
        const [{ recorded }] = await asService(
          c.tenant_id,
          (tx) =>
            // Against what was checked: a service provisioned again meanwhile (new ids or
            // credentials) is not judged by a check of its old ones.
            tx<{ recorded: boolean }>`select private.record_service_drift(${c.tenant_id}, ${service}, ${detail},
              ${tx.json(c.external_ids as never)}, ${c.credentials_encrypted}) as recorded`,
        );
        if (recorded) counts.drifted++;
      }
    }));
    return { queued, ...counts };
  },
};
