// The provisioning worker: one run is one function invocation. It claims small
// batches (FOR UPDATE SKIP LOCKED, under a lease), reconciles each service with its
// desired state through the partner's connector, records partner ids as soon as they
// exist, and stops claiming when its time budget is spent. No transaction is held
// across a partner call.
import type { Connectors } from './connectors/index.ts';
import { PartnerError, type ProvisionContext, type ProvisionResult, type ServiceName } from './connectors/types.ts';
import { decryptJson, encryptJson } from './crypto.ts';
import { asService } from './db.ts';

export interface WorkerOptions {
  connectors: Connectors;
  workerId?: string;
  batch?: number;
  /** Stop claiming after this long (an Edge Function has 150 s of wall clock). */
  budgetMs?: number;
  leaseSeconds?: number;
}

export interface WorkerReport {
  worker: string;
  claimed: number;
  succeeded: number;
  retried: number;
  dead: number;
  lost: number;
  ms: number;
}

interface Job {
  job_id: number;
  tenant_id: string;
  service: ServiceName;
  attempts: number;
  desired_state: 'active' | 'suspended' | 'removed';
  state: string;
  external_ids: Record<string, unknown>;
  credentials_encrypted: string | null;
  tenant_slug: string;
  tenant_name: string;
  admin_email: string | null;
  admin_name: string | null;
}

/** Another worker took the job over (our lease ran out): stop touching it. */
class LeaseLost extends Error {}

async function runJob(
  job: Job,
  worker: string,
  connectors: Connectors,
): Promise<'succeeded' | 'retried' | 'dead' | 'lost'> {
  const record = async (sql: (tx: Parameters<Parameters<typeof asService>[1]>[0]) => Promise<unknown>) =>
    await asService(job.tenant_id, sql);
  const fail = async (message: string, retryable: boolean, retryAfter?: number) => {
    const outcome = await record((tx) =>
      tx`select private.fail_provisioning_job(${job.job_id}, ${worker}, ${message}, ${retryable}, ${retryAfter ?? null}) as o`
    ) as { o: string }[];
    return outcome[0].o === 'retry' ? 'retried' : outcome[0].o === 'dead' ? 'dead' : 'lost';
  };

  const connector = connectors[job.service];
  if (!connector) return await fail(`${job.service} is not configured on this deployment`, false);

  // Credentials are sealed for this tenant's service and no other row (shared/crypto.ts).
  const owner = { tenantId: job.tenant_id, service: job.service };
  const ctx: ProvisionContext = {
    tenant: { id: job.tenant_id, slug: job.tenant_slug, name: job.tenant_name },
    admin: job.admin_email ? { email: job.admin_email, name: job.admin_name ?? job.admin_email } : null,
    externalIds: { ...job.external_ids },
    credentials: job.credentials_encrypted ? await decryptJson(job.credentials_encrypted, owner) : null,
    async checkpoint(ids, credentials) {
      Object.assign(ctx.externalIds, ids);
      if (credentials) ctx.credentials = credentials;
      const sealed = credentials ? await encryptJson(credentials, owner) : null;
      const [{ ok }] = await record((tx) =>
        tx`select private.record_provisioning_progress(${job.job_id}, ${worker}, ${tx.json(ids as never)}, ${sealed}) as ok`
      ) as { ok: boolean }[];
      if (!ok) throw new LeaseLost();
    },
  };

  try {
    let result: ProvisionResult | void = undefined;
    let state: string;
    if (job.desired_state === 'active') {
      if (job.state === 'suspended') await connector.resume(ctx);
      result = await connector.ensure(ctx);
      state = 'active';
    } else if (job.desired_state === 'suspended') {
      // Nothing made yet: nothing to suspend.
      if (Object.keys(ctx.externalIds).length) result = await connector.suspend(ctx);
      state = 'suspended';
    } else {
      if (Object.keys(ctx.externalIds).length) result = await connector.remove(ctx);
      state = 'removed';
    }
    const sealed = result?.credentials ? await encryptJson(result.credentials, owner) : null;
    const [{ ok }] = await record((tx) =>
      tx`select private.finish_provisioning_job(${job.job_id}, ${worker}, ${state}, ${
        tx.json((result?.externalIds ?? {}) as never)
      }, ${sealed}) as ok`
    ) as { ok: boolean }[];
    return ok ? 'succeeded' : 'lost';
  } catch (err) {
    if (err instanceof LeaseLost) return 'lost';
    if (err instanceof PartnerError) {
      console.error(`[provisioner] ${job.tenant_slug}/${job.service}: ${err.message}`);
      return await fail(err.message, err.retryable, err.retryAfterSeconds);
    }
    console.error(`[provisioner] ${job.tenant_slug}/${job.service}: unexpected`, (err as Error).message);
    return await fail(`unexpected error: ${(err as Error).message}`.slice(0, 500), true);
  }
}

export async function runProvisioningWorker(opts: WorkerOptions): Promise<WorkerReport> {
  const started = Date.now();
  const worker = opts.workerId ?? `worker-${crypto.randomUUID()}`;
  const budget = opts.budgetMs ?? 100_000;
  const report: WorkerReport = { worker, claimed: 0, succeeded: 0, retried: 0, dead: 0, lost: 0, ms: 0 };
  while (Date.now() - started < budget) {
    const jobs = await asService(
      null,
      (tx) => tx`select * from private.claim_provisioning_jobs(${worker}, ${opts.batch ?? 5}, ${opts.leaseSeconds ?? 120})`,
    ) as unknown as Job[];
    if (!jobs.length) break;
    report.claimed += jobs.length;
    for (const job of jobs) report[await runJob(job, worker, opts.connectors)]++;
  }
  report.ms = Date.now() - started;
  return report;
}
