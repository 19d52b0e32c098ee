// deliver-webhook: sends one outbound webhook delivery (payload { delivery_id }), signed
// per Standard Webhooks (webhook-id — the event's, so receivers deduplicate retries —,
// webhook-timestamp, webhook-signature), with a timeout and no redirects, and records
// the attempt (admins read them: GET /tenants/{id}/webhooks/{endpointId}/deliveries).
// Queued by the outbox (one job per delivery, named queue per endpoint and ordering
// key), so one ticket's events reach an endpoint in order. At least once: a crash after
// the POST means one more delivery with the same webhook-id. A receiver's Retry-After
// (429, 503) is honoured before the retry, by all the endpoint's deliveries
// (private.webhook_endpoint_hold); a 429 is no failure of the endpoint, which is
// disabled only after failing a day (private.record_webhook_attempt). From its fifth
// failure in a row an endpoint is only probed, one delivery per interval; the others are
// deferred without spending an attempt (private.webhook_endpoint_gate), and go out as soon
// as a probe gets through (private.webhook_endpoint_gate_job records them for that).
import { Webhook } from 'standardwebhooks';
import { retryAfter } from '../../connectors/types.ts';
import { decryptJson, sealingKeyReady } from '../../crypto.ts';
import { asService } from '../../db.ts';
import { resolvedTargetProblem } from '../../webhooks/ssrf.ts';
import { JobDeferred, JobError, LeaseLost, type Task } from '../types.ts';

interface Delivery {
  status: string;
  enabled: boolean;
  url: string;
  secret_encrypted: string;
  /** The previous secret while it still signs (a rotation's overlap), else null. */
  previous_secret_encrypted: string | null;
  message_id: string;
  type: string;
  payload: Record<string, unknown>;
  tenant_id: string;
  endpoint_id: string;
}

export const deliverWebhook: Task<{ delivery_id: number }> = {
  async run(job, { worker, deps }) {
    const deliveryId = job.payload.delivery_id;
    // The context, and whether the tenant's plan still includes outbound webhooks: one
    // that no longer does ends the delivery unsent (private.webhook_delivery_withheld).
    // A delivery that would be sent also asks the endpoint's breaker: an endpoint failing
    // without pause gets one delivery as a probe per interval, and the others are
    // deferred, untried (private.webhook_endpoint_gate).
    // An endpoint whose API key (the one that set it up) has expired is disabled first,
    // and its deliveries wait for an admin to enable it again
    // (private.webhook_endpoint_key_lapsed, 20261207110000).
    const [d] = await asService(
      null,
      (tx) =>
        tx<Delivery & { withheld: boolean; key_lapsed: boolean; defer_seconds: string | null }>`
          select c.*, w.withheld, k.key_lapsed,
                 private.webhook_endpoint_previous_secret(c.tenant_id, c.endpoint_id) as previous_secret_encrypted,
                 case when not w.withheld and not k.key_lapsed and c.status = 'pending' and c.enabled
                      then private.webhook_endpoint_gate_job(c.tenant_id, c.endpoint_id, ${job.id}) end as defer_seconds
          from private.webhook_delivery_context(${deliveryId}) c,
               lateral (select private.webhook_delivery_withheld(${deliveryId}) as withheld) w,
               lateral (select not w.withheld and c.status = 'pending' and c.enabled
                               and private.webhook_endpoint_key_lapsed(c.tenant_id, c.endpoint_id) as key_lapsed) k`,
    );
    if (d?.withheld) return { withheld: 1 };
    if (d?.key_lapsed) return { held: 1 };
    // Already delivered or given up (a repeat job), or gone: nothing to send. A disabled
    // endpoint's deliveries wait, pending, until it is enabled again (which queues them).
    if (!d || d.status !== 'pending' || !d.enabled) return { skipped: 1 };
    if (d.defer_seconds !== null) {
      throw new JobDeferred(Number(d.defer_seconds), 'the endpoint keeps failing: waiting for its next probe');
    }

    const t0 = Date.now();
    let status: number | null = null;
    let error: string | null = null;
    /** A receiver that asks for time (429, 503 with Retry-After) gets it before the retry. */
    let wait: number | undefined;
    // The sealing key missing or malformed (a deploy without PROVISIONING_ENCRYPTION_KEY)
    // is the platform's fault, not the endpoint's: the delivery waits, its job's attempts
    // untouched (failing, the job would die after its attempts and fail the delivery),
    // and nothing is charged to the endpoint — charged, every endpoint of every tenant
    // tripped its breaker and was disabled after a day, told to register itself again.
    const unsealable = await sealingKeyReady().then(() => null, (err: Error) => err.message);
    if (unsealable) {
      console.error(`[webhooks] deliveries wait: ${unsealable}`);
      throw new JobDeferred(300, `the sealing key is unusable (${unsealable}): the delivery waits for it`);
    }
    const problem = await resolvedTargetProblem(d.url);
    // The secret is sealed for this endpoint of this tenant: one copied in from another
    // row does not open, and nothing is sent (a signature with a foreign secret would be
    // one its receiver trusts).
    const open = (sealed: string | null) =>
      problem || !sealed ? Promise.resolve(undefined) : decryptJson<{ secret: string }>(sealed, {
        tenantId: d.tenant_id,
        endpointId: d.endpoint_id,
      }).then((v) => v.secret, (err: Error) => {
        console.error(`[webhooks] endpoint ${d.tenant_id}/${d.endpoint_id}: ${err.message}`);
        return undefined;
      });
    const secret = await open(d.secret_encrypted);
    // A rotation's previous secret signs too while it lasts (the receiver may not have
    // switched yet); one that does not open is left out.
    const previous = secret ? await open(d.previous_secret_encrypted) : undefined;
    if (problem) {
      error = `target refused: ${problem}`;
    } else if (!secret) {
      error = 'the endpoint secret does not decrypt for this endpoint; register the endpoint again';
    } else {
      try {
        const body = JSON.stringify({ id: d.message_id, ...d.payload });
        const now = new Date();
        const res = await fetch(d.url, {
          method: 'POST',
          redirect: 'manual', // a redirect could point anywhere: not followed
          headers: {
            'content-type': 'application/json',
            'user-agent': 'tenant-platform-webhooks/1',
            'webhook-id': d.message_id,
            'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
            // Several signatures, space-separated (Standard Webhooks): any one verifies.
            'webhook-signature': [secret, previous].filter((k): k is string => !!k)
              .map((k) => new Webhook(k).sign(d.message_id, now, body)).join(' '),
          },
          body,
          signal: AbortSignal.timeout(deps.webhookTimeoutMs ?? 10_000),
        });
        status = res.status;
        if (status === 429 || status === 503) wait = retryAfter(res.headers.get('retry-after'));
        await res.body?.cancel();
        if (status < 200 || status > 299) error = `HTTP ${status}`;
      } catch (err) {
        // Generic on purpose: admins read this, and details would map the network.
        error = (err as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed';
      }
    }
    // A receiver asking for time asks it for the endpoint: its other deliveries wait too
    // (private.webhook_endpoint_gate defers them, untried). A 429 without a time: 10 s.
    const hold = status === 429 ? wait ?? 10 : status === 503 ? wait : undefined;
    const final = job.attempts >= job.max_attempts;
    const [{ outcome }] = await asService(d.tenant_id, async (tx) => {
      if (hold !== undefined) await tx`select private.webhook_endpoint_hold(${d.tenant_id}, ${d.endpoint_id}, ${hold})`;
      return await tx`select private.record_webhook_attempt(${deliveryId}, ${job.id}, ${worker}, ${status}, ${error}, ${
        Date.now() - t0
      }, ${final}) as outcome`;
    });
    if (outcome === 'lost') throw new LeaseLost();
    // Removed while it was being sent (its call or ticket deleted, its endpoint gone): the
    // job is done, and the deliveries queued behind it go on.
    if (outcome === 'gone') return { gone: 1 };
    // Out of retries while the endpoint fails: it was disabled and the delivery waits for
    // it to be enabled again (the job is done; re-enabling queues the delivery anew).
    if (outcome === 'held') return { held: 1 };
    if (outcome !== 'delivered') throw new JobError(error ?? 'delivery failed', { retryAfterSeconds: wait });
    return { delivered: 1 };
  },

  async failed(tx, job, outcome, error) {
    if (outcome === 'dead') await tx`select private.webhook_delivery_dead(${job.payload.delivery_id}, ${error})`;
  },
};
