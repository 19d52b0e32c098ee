// Outbound delivery: claims due deliveries (in order per endpoint and ticket), signs
// each per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature — the id
// is the event's, so receivers deduplicate retries), POSTs it with a timeout, and
// records the attempt. At least once: a crash after the POST means one more delivery.
import { Webhook } from 'standardwebhooks';
import { postChatwootReply } from '../connectors/chatwoot.ts';
import { PartnerError } from '../connectors/types.ts';
import { decryptJson, encryptJson } from '../crypto.ts';
import { env } from '../env.ts';
import { asService } from '../db.ts';
import { resolvedTargetProblem } from './ssrf.ts';

export interface DeliveryReport {
  claimed: number;
  delivered: number;
  retried: number;
  failed: number;
  ms: number;
}

/** A new endpoint secret, in the whsec_ form receivers' libraries take, sealed for that
 *  endpoint of that tenant alone. */
export async function newEndpointSecret(
  tenantId: string,
  endpointId: string,
): Promise<{ secret: string; sealed: string }> {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const secret = `whsec_${btoa(String.fromCharCode(...bytes))}`;
  return { secret, sealed: await encryptJson({ secret }, { tenantId, endpointId }) };
}

interface Due {
  delivery_id: number;
  tenant_id: string;
  endpoint_id: string;
  url: string;
  secret_encrypted: string;
  message_id: string;
  type: string;
  payload: unknown;
}

async function deliverOne(d: Due, worker: string, timeoutMs: number): Promise<string> {
  const t0 = Date.now();
  let status: number | null = null;
  let error: string | null = null;
  const problem = await resolvedTargetProblem(d.url);
  // The secret is sealed for this endpoint of this tenant: one copied in from another
  // row does not open, and nothing is sent (a signature with a foreign secret would be
  // one its receiver trusts).
  const secret = problem ? undefined : await decryptJson<{ secret: string }>(d.secret_encrypted, {
    tenantId: d.tenant_id,
    endpointId: d.endpoint_id,
  }).then((v) => v.secret, (err: Error) => {
    console.error(`[webhooks] endpoint ${d.tenant_id}/${d.endpoint_id}: ${err.message}`);
    return undefined;
  });
  if (problem) {
    error = `target refused: ${problem}`;
  } else if (!secret) {
    error = 'the endpoint secret does not decrypt for this endpoint; register the endpoint again';
  } else {
    try {
      const body = JSON.stringify({ id: d.message_id, ...(d.payload as Record<string, unknown>) });
      const now = new Date();
      const res = await fetch(d.url, {
        method: 'POST',
        redirect: 'manual', // a redirect could point anywhere: not followed
        headers: {
          'content-type': 'application/json',
          'user-agent': 'tenant-platform-webhooks/1',
          'webhook-id': d.message_id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': new Webhook(secret).sign(d.message_id, now, body),
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      await res.body?.cancel();
      if (status < 200 || status > 299) error = `HTTP ${status}`;
    } catch (err) {
      // Generic on purpose: admins read this, and details would map the network.
      error = (err as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed';
    }
  }
  const [{ outcome }] = await asService(
    null,
    (tx) =>
      tx`select private.record_webhook_attempt(${d.delivery_id}, ${worker}, ${status}, ${error}, ${Date.now() - t0}) as outcome`,
  ) as { outcome: string }[];
  return outcome;
}

export async function deliverWebhooks(
  opts: { budgetMs?: number; batch?: number; timeoutMs?: number; workerId?: string } = {},
): Promise<DeliveryReport> {
  const started = Date.now();
  const worker = opts.workerId ?? `deliverer-${crypto.randomUUID()}`;
  const report: DeliveryReport = { claimed: 0, delivered: 0, retried: 0, failed: 0, ms: 0 };
  while (Date.now() - started < (opts.budgetMs ?? 50_000)) {
    const due = await asService(
      null,
      (tx) => tx`select * from private.claim_webhook_deliveries(${worker}, ${opts.batch ?? 10}, 60)`,
    ) as unknown as Due[];
    if (!due.length) break;
    report.claimed += due.length;
    // One batch at a time, its requests in parallel, so a slow receiver costs a batch at
    // most one timeout, well inside the lease.
    const outcomes = await Promise.all(due.map((d) => deliverOne(d, worker, opts.timeoutMs ?? 10_000)));
    for (const outcome of outcomes) {
      if (outcome === 'delivered') report.delivered++;
      else if (outcome === 'retry') report.retried++;
      else if (outcome === 'failed') report.failed++;
    }
  }
  report.ms = Date.now() - started;
  return report;
}

/** Replies written here, posted back to their Chatwoot conversations. */
export async function deliverChatwootReplies(
  opts: { chatwootUrl?: string; timeoutMs?: number; workerId?: string } = {},
): Promise<{ sent: number; retried: number; failed: number }> {
  const url = opts.chatwootUrl ?? env('CHATWOOT_URL');
  const report = { sent: 0, retried: 0, failed: 0 };
  const worker = opts.workerId ?? `replies-${crypto.randomUUID()}`;
  const due = await asService(null, (tx) => tx`select * from private.claim_chatwoot_replies(${worker}, 20)`);
  for (const r of due) {
    let messageId: number | null = null;
    let error: string | null = null;
    let retryable = true;
    try {
      const accountId = r.external_ids?.account_id as number | undefined;
      const creds = r.credentials_encrypted
        ? await decryptJson<{ access_token?: string }>(r.credentials_encrypted, {
          tenantId: r.tenant_id,
          service: 'chatwoot',
        })
        : {};
      if (!url || !accountId || !creds.access_token) {
        retryable = false;
        error = 'Chatwoot is not provisioned for this tenant (no account or owner token)';
      } else {
        messageId = await postChatwootReply(
          { url, timeoutMs: opts.timeoutMs },
          accountId,
          r.conversation_id,
          creds.access_token,
          r.content,
        );
      }
    } catch (err) {
      error = (err as Error).message;
      retryable = err instanceof PartnerError ? err.retryable : true;
    }
    const [{ status }] = await asService(
      r.tenant_id,
      (tx) => tx`select private.finish_chatwoot_reply(${r.reply_id}, ${worker}, ${messageId}, ${error}, ${retryable}) as status`,
    );
    if (status === 'sent') report.sent++;
    else if (status === 'pending') report.retried++;
    else if (status === 'failed') report.failed++;
  }
  return report;
}
