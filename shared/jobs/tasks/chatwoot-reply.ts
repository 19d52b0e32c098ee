// chatwoot-reply: posts a reply written here (payload { reply_id }) to its ticket's
// Chatwoot conversation through the tenant's owner token, and records Chatwoot's id for
// it, by which the echo Chatwoot sends back is recognised (shared/webhooks/chatwoot.ts;
// an echo arriving first marks the reply sent itself). A retry looks for the message in
// the conversation before posting it again: the POST before it may have been saved.
// Queued by trigger with the reply, named queue per conversation, so a conversation's
// replies arrive in order.
import { findChatwootReply, postChatwootReply } from '../../connectors/chatwoot.ts';
import { decryptJson } from '../../crypto.ts';
import { asService } from '../../db.ts';
import { env } from '../../env.ts';
import { PartnerError } from '../../connectors/types.ts';
import { JobDeferred, JobError, LeaseLost, type Task } from '../types.ts';

interface Reply {
  status: string;
  tenant_id: string;
  conversation_id: string;
  content: string;
  external_ids: Record<string, unknown> | null;
  credentials_encrypted: string | null;
  /** The account the reply was written for (bigint, as text). */
  account_id: string | null;
}

/** The reply's message, if an earlier attempt saved it in the conversation. */
async function alreadyPosted(
  config: { url: string; timeoutMs?: number },
  accountId: number,
  r: Reply,
  replyId: number,
  token: string,
): Promise<number | undefined> {
  const senderId = r.external_ids?.user_id;
  if (typeof senderId !== 'number') return undefined;
  const [{ created_at: since }] = await asService(
    null,
    (tx) => tx<{ created_at: Date }>`select created_at from private.chatwoot_replies where id = ${replyId}`,
  );
  return await findChatwootReply(config, accountId, r.conversation_id, token, {
    content: r.content,
    senderId,
    since,
    taken: async (id) =>
      (await asService(
        null,
        (tx) => tx`select 1 from private.chatwoot_replies where tenant_id = ${r.tenant_id} and chatwoot_message_id = ${id}`,
      )).length > 0,
  });
}

/** Chatwoot's 401s (an account still suspended just after its tenant resumed, an owner
 *  token replaced by a provisioning run under way) pass once the tenant's provisioning
 *  has run: tried again in a minute, within the job's attempts, rather than the reply
 *  failed for good. */
function untilProvisioned(err: unknown): never {
  if (err instanceof PartnerError && err.status === 401) {
    throw new JobError(`${err.message} (tried again once provisioning has run)`, { retryAfterSeconds: 60 });
  }
  throw err;
}

/** A POST that timed out, lost its connection or met a gateway's 502/504 may still be
 *  saved by Chatwoot: its retry, which looks for the message first, waits half a minute
 *  for it to land rather than the first backoff's two seconds. */
function whenSaved(err: unknown): unknown {
  if (
    err instanceof PartnerError && err.retryable && err.retryAfterSeconds === undefined &&
    (err.status === undefined || err.status === 502 || err.status === 504)
  ) {
    return new PartnerError(err.service, err.message.replace(/^chatwoot: /, ''), true, err.status, 30);
  }
  return err;
}

export const chatwootReply: Task<{ reply_id: number }> = {
  async run(job, { worker, deps }) {
    const replyId = job.payload.reply_id;
    const [r] = await asService(
      null,
      (tx) =>
        tx<Reply & { in_plan: boolean; tenant_status: string; service_state: string | null; chatwoot_state: string | null }>`
        select c.*, private.chatwoot_in_plan(c.tenant_id) as in_plan,
          (select t.status from public.tenants t where t.id = c.tenant_id) as tenant_status,
          s.state as chatwoot_state,
          case when s.desired_state = 'active' then s.state end as service_state
        from private.chatwoot_reply_to_send(${replyId}) c
        left join public.tenant_services s on s.tenant_id = c.tenant_id and s.service = 'chatwoot'`,
    );
    if (!r || r.status !== 'pending') return { skipped: 1 };
    // Written before its tenant was suspended (or deleted, restorable for a while): the
    // tenant's Chatwoot account is suspended with it, and the reply waits, its attempts
    // untouched and its conversation's later replies behind it, for the tenant to be
    // active again. Posting it meanwhile failed it for good (401 Account is suspended).
    // Deleted, and its Chatwoot account removed since (the grace period over): no restore
    // brings that account back (a restore makes a new one), so the reply is failed for
    // good rather than waiting, re-claimed every five minutes, for ever.
    if (r.tenant_status === 'deleted' && (r.chatwoot_state === null || r.chatwoot_state === 'removed')) {
      throw new JobError('The tenant was deleted and its Chatwoot account removed: the reply was not sent', {
        retryable: false,
      });
    }
    if (r.tenant_status !== 'active') {
      throw new JobDeferred(300, `The tenant is ${r.tenant_status}: the reply waits for it to be active again`);
    }
    // The plan no longer includes Chatwoot (20261206154000): not sent, the reply failed.
    if (!r.in_plan) throw new JobError("Chatwoot is not in the tenant's plan: the reply was not sent", { retryable: false });
    // Active again, its account not yet resumed (the provisioning run that resumes it is
    // still to come, or retrying): the reply waits for it rather than spend its attempts.
    // Only while the service is wanted active: one being removed is not waited for, and
    // one whose resume failed for good is `failed`, so the reply goes on to its 401s.
    if (r.service_state === 'suspended') {
      throw new JobDeferred(60, "The tenant's Chatwoot account is being resumed: the reply waits for it");
    }
    const url = deps.chatwootUrl ?? env('CHATWOOT_URL');
    const accountId = r.external_ids?.account_id as number | undefined;
    const creds = r.credentials_encrypted
      ? await decryptJson<{ access_token?: string }>(r.credentials_encrypted, { tenantId: r.tenant_id, service: 'chatwoot' })
      : {};
    if (!url || !accountId || !creds.access_token) {
      throw new JobError('Chatwoot is not provisioned for this tenant (no account or owner token)', { retryable: false });
    }
    // Written for a former account (it changed while the reply was queued): that
    // conversation is gone, and its number in the new account is someone else's.
    if (r.account_id !== null && String(r.account_id) !== String(accountId)) {
      throw new JobError('The Chatwoot account was replaced: the reply was not sent', { retryable: false });
    }
    const config = { url, timeoutMs: deps.chatwootTimeoutMs };
    // A POST begun before may have been saved by Chatwoot though its answer never came (a
    // timeout, a dropped connection): the reply is looked for before it is posted again.
    // Recorded on the reply, in a transaction of its own before the POST: an attempt
    // count says nothing once an operator's retry_job has set it back to 0.
    const [{ begun }] = await asService(
      r.tenant_id,
      (tx) => tx<{ begun: boolean | null }>`select private.chatwoot_reply_post_begins(${replyId}) as begun`,
    );
    // No longer pending (its echo claimed it as sent meanwhile), or gone: nothing to post.
    if (begun === null) return { skipped: 1 };
    const found = begun
      ? await alreadyPosted(config, accountId, r, replyId, creds.access_token).catch(untilProvisioned)
      : undefined;
    // PartnerError carries retryable and Retry-After for the runner.
    const messageId = found ??
      await postChatwootReply(config, accountId, r.conversation_id, creds.access_token, r.content).catch(
        (err) => untilProvisioned(whenSaved(err)),
      );
    const [{ status }] = await asService(
      r.tenant_id,
      (tx) =>
        tx`select private.finish_chatwoot_reply(${replyId}, ${job.id}, ${worker}, ${messageId}, ${null}, ${false}) as status`,
    );
    if (status === 'lost') {
      // Its echo may have come first and marked it sent (private.claim_chatwoot_echo).
      const [now] = await asService(
        null,
        (tx) => tx<{ status: string }>`select status from private.chatwoot_replies where id = ${replyId}`,
      );
      if (now?.status === 'sent') return { sent: 1 };
      throw new LeaseLost();
    }
    return { sent: 1 };
  },

  async failed(tx, job, outcome, error, { worker }) {
    await tx`select private.finish_chatwoot_reply(${job.payload.reply_id}, ${job.id}, ${worker}, ${null}, ${error}, ${
      outcome === 'dead'
    })`;
  },
};
