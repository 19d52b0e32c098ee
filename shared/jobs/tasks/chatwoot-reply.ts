// chatwoot-reply: posts a reply written here (payload { reply_id }) to its ticket's
// Chatwoot conversation through the tenant's owner token, and records Chatwoot's id for
// it, by which the echo Chatwoot sends back is recognised (shared/webhooks/chatwoot.ts).
// Queued by trigger with the reply, named queue per conversation, so a conversation's
// replies arrive in order.
import { postChatwootReply } from '../../connectors/chatwoot.ts';
import { decryptJson } from '../../crypto.ts';
import { asService } from '../../db.ts';
import { env } from '../../env.ts';
import { JobError, LeaseLost, type Task } from '../types.ts';

interface Reply {
  status: string;
  tenant_id: string;
  conversation_id: string;
  content: string;
  external_ids: Record<string, unknown> | null;
  credentials_encrypted: string | null;
}

export const chatwootReply: Task<{ reply_id: number }> = {
  async run(job, { worker, deps }) {
    const replyId = job.payload.reply_id;
    const [r] = await asService(null, (tx) => tx<Reply>`select * from private.chatwoot_reply_context(${replyId})`);
    if (!r || r.status !== 'pending') return { skipped: 1 };
    const url = deps.chatwootUrl ?? env('CHATWOOT_URL');
    const accountId = r.external_ids?.account_id as number | undefined;
    const creds = r.credentials_encrypted
      ? await decryptJson<{ access_token?: string }>(r.credentials_encrypted, { tenantId: r.tenant_id, service: 'chatwoot' })
      : {};
    if (!url || !accountId || !creds.access_token) {
      throw new JobError('Chatwoot is not provisioned for this tenant (no account or owner token)', { retryable: false });
    }
    // PartnerError carries retryable and Retry-After for the runner.
    const messageId = await postChatwootReply(
      { url, timeoutMs: deps.chatwootTimeoutMs },
      accountId,
      r.conversation_id,
      creds.access_token,
      r.content,
    );
    const [{ status }] = await asService(
      r.tenant_id,
      (tx) =>
        tx`select private.finish_chatwoot_reply(${replyId}, ${job.id}, ${worker}, ${messageId}, ${null}, ${false}) as status`,
    );
    if (status === 'lost') throw new LeaseLost();
    return { sent: 1 };
  },

  async failed(tx, job, outcome, error, { worker }) {
    await tx`select private.finish_chatwoot_reply(${job.payload.reply_id}, ${job.id}, ${worker}, ${null}, ${error}, ${
      outcome === 'dead'
    })`;
  },
};
