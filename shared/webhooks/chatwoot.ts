// Chatwoot conversations → tickets of the tenant whose account sent them. The URL names
// the tenant; the request proves itself with the X-Chatwoot-Signature Chatwoot sends
// where the webhook has a secret (HMAC-SHA256 of "{timestamp}.{body}", ≤ 5 minutes old),
// or, for older Chatwoot versions, with the tenant's secret token in the URL.
import type { Tx } from '../db.ts';
import { decryptJson } from '../crypto.ts';
import { env } from '../env.ts';
import { secretEquals } from '../auth/service.ts';
import { ApiError, unauthorized } from '../errors.ts';

/** A partner's JSON payload: shapes are checked where they are read. */
// deno-lint-ignore no-explicit-any
type Payload = Record<string, any>;

const TOLERANCE_S = 300;

async function hmacHex(key: string, text: string): Promise<string> {
  const k = await crypto.subtle.importKey('raw', new TextEncoder().encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, new TextEncoder().encode(text)));
  return [...sig].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The secret token in a tenant's Chatwoot webhook URL, derived from a server key. */
export async function chatwootUrlToken(tenantId: string): Promise<string> {
  const key = env('CHATWOOT_WEBHOOK_KEY') ?? env('PROVISIONING_ENCRYPTION_KEY');
  if (!key) throw new ApiError(503, 'not_configured', 'CHATWOOT_WEBHOOK_KEY is not set');
  return (await hmacHex(key, `chatwoot-webhook:${tenantId}`)).slice(0, 40);
}

export async function verifyChatwoot(tx: Tx, tenantId: string, body: string, headers: Headers, urlToken: string | null) {
  const signature = headers.get('x-chatwoot-signature');
  if (signature) {
    const [svc] = await tx`select credentials_encrypted from public.tenant_services where tenant_id = ${tenantId} and service = 'chatwoot'`;
    const secret = svc?.credentials_encrypted ? (await decryptJson<{ webhook_secret?: string }>(svc.credentials_encrypted)).webhook_secret : undefined;
    const ts = Number(headers.get('x-chatwoot-timestamp'));
    if (secret && Number.isFinite(ts)) {
      if (Math.abs(Date.now() / 1000 - ts) > TOLERANCE_S) throw unauthorized('stale_timestamp', 'The webhook timestamp is too old');
      const expected = `sha256=${await hmacHex(secret, `${ts}.${body}`)}`;
      if (await secretEquals(expected, signature)) return;
      throw unauthorized('invalid_signature', 'Webhook signature does not match');
    }
  }
  if (urlToken && (await secretEquals(urlToken, await chatwootUrlToken(tenantId)))) return;
  throw unauthorized('invalid_signature', 'Webhook not authenticated: bad or missing signature or token');
}

const STATUS: Record<string, string> = { open: 'open', pending: 'pending', snoozed: 'pending', resolved: 'resolved' };

async function ticketFor(tx: Tx, tenantId: string, conversation: Payload) {
  const conversationId = String(conversation.display_id ?? conversation.id);
  const [existing] = await tx`
    select id, status from public.tickets where tenant_id = ${tenantId} and metadata ->> 'chatwoot_conversation_id' = ${conversationId}`;
  if (existing) return existing;
  const sender = conversation.meta?.sender ?? {};
  const first = (conversation.messages ?? [])[0]?.content as string | undefined;
  const title = `Chat #${conversationId}${sender.name ? ` from ${sender.name}` : ''}`.slice(0, 200).padEnd(5, '.');
  const [t] = await tx`
    insert into public.tickets (tenant_id, title, description, department, metadata, tags)
    values (${tenantId}, ${title}, ${first ? first.slice(0, 5000) : null}, 'support',
            ${tx.json({ chatwoot_conversation_id: conversationId, chatwoot_inbox_id: conversation.inbox_id ?? null, contact: { name: sender.name ?? null, email: sender.email ?? null } })},
            ${['chatwoot']})
    on conflict (tenant_id, (metadata ->> 'chatwoot_conversation_id')) where metadata ? 'chatwoot_conversation_id' do nothing
    returning id, status`;
  return t ?? (await tx`select id, status from public.tickets where tenant_id = ${tenantId} and metadata ->> 'chatwoot_conversation_id' = ${conversationId}`)[0];
}

export async function applyChatwootEvent(tx: Tx, tenantId: string, event: Payload): Promise<'applied' | 'ignored'> {
  switch (event.event) {
    case 'conversation_created':
      await ticketFor(tx, tenantId, event);
      return 'applied';
    case 'message_created': {
      const type = event.message_type;
      if (type === 'activity' || type === 2 || type === 'template' || type === 3) return 'ignored';
      // Our own replies, posted by the delivery job, come back: not a new message.
      const [ours] = await tx`
        select 1 from private.chatwoot_replies where tenant_id = ${tenantId} and chatwoot_message_id = ${Number(event.id) || -1}`;
      if (ours) return 'ignored';
      const ticket = await ticketFor(tx, tenantId, event.conversation ?? {});
      const incoming = type === 'incoming' || type === 0;
      await tx`
        insert into public.ticket_messages (tenant_id, ticket_id, type, content)
        values (${tenantId}, ${ticket.id}, ${!incoming && event.private ? 'note' : 'message'},
                ${String(event.content || '[attachment]').slice(0, 10000)})`;
      // A customer writing again hands a pending ticket back to the agents.
      if (incoming && ticket.status === 'pending') {
        await tx`update public.tickets set status = 'open' where tenant_id = ${tenantId} and id = ${ticket.id}`;
      }
      return 'applied';
    }
    case 'conversation_status_changed': {
      const ticket = await ticketFor(tx, tenantId, event);
      const target = STATUS[event.status];
      if (!target || target === ticket.status) return 'ignored';
      const [{ allowed }] = await tx`select private.allowed_ticket_transitions(${ticket.status}) as allowed`;
      if (!allowed.includes(target)) return 'ignored';
      await tx`update public.tickets set status = ${target} where tenant_id = ${tenantId} and id = ${ticket.id}`;
      return 'applied';
    }
    default:
      return 'ignored';
  }
}

/** A stable id for deduplication: Chatwoot's delivery id, else one derived from the event. */
export function chatwootEventId(event: Payload, headers: Headers): string {
  const delivery = headers.get('x-chatwoot-delivery');
  if (delivery) return delivery;
  const conv = event.conversation?.display_id ?? event.display_id ?? event.id;
  if (event.event === 'message_created') return `message_created:${event.id}`;
  if (event.event === 'conversation_status_changed') return `status:${conv}:${event.status}:${event.timestamp ?? event.updated_at ?? ''}`;
  return `${event.event}:${conv}`;
}
