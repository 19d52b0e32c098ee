// Chatwoot conversations → tickets of the tenant whose account sent them. The URL names
// the tenant; the request proves itself with the X-Chatwoot-Signature Chatwoot sends
// where the webhook has a secret (HMAC-SHA256 of "{timestamp}.{body}", ≤ 5 minutes old),
// or, for older Chatwoot versions, with the tenant's secret token in the URL. A tenant
// without Chatwoot (or unknown, or deleted) fails like a bad token — 401, nothing said
// about the tenant; a suspended tenant's genuine events are refused with 403.
import type { Tx } from '../db.ts';
import { decryptJson } from '../crypto.ts';
import { env } from '../env.ts';
import { secretEquals } from '../auth/service.ts';
import { supabaseUrl } from '../auth/issuers.ts';
import { ApiError, forbidden, unauthorized } from '../errors.ts';
import { firstCharacters } from '../text.ts';
import { isOutgoing, urlTokenGenerations, withinFormerGrace } from '../connectors/chatwoot.ts';

/** A partner's JSON payload: shapes are checked where they are read. */
// deno-lint-ignore no-explicit-any
type Payload = Record<string, any>;

const TOLERANCE_S = 300;

async function hmacHex(key: string, text: string): Promise<string> {
  const k = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(key),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', k, new TextEncoder().encode(text)));
  return [...sig].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const URL_TOKEN_LABEL = 'chatwoot-webhook-url-token/v1';

let tokenKey: { from: string; key: Promise<CryptoKey> } | undefined;

/** The key of the URL tokens: HKDF-SHA256 with its own label over CHATWOOT_WEBHOOK_KEY,
 *  or — where that is not set — over the bytes of PROVISIONING_ENCRYPTION_KEY. Either
 *  way the tokens are made with a key of their own: the credentials key never signs
 *  anything, and a token reveals nothing about it. */
function urlTokenKey(): Promise<CryptoKey> {
  const dedicated = env('CHATWOOT_WEBHOOK_KEY');
  const fallback = env('PROVISIONING_ENCRYPTION_KEY');
  if (!dedicated && !fallback) {
    throw new ApiError(503, 'not_configured', 'CHATWOOT_WEBHOOK_KEY is not set');
  }
  const from = dedicated ? `dedicated:${dedicated}` : `credentials:${fallback}`;
  if (tokenKey?.from !== from) {
    const ikm = dedicated ? new TextEncoder().encode(dedicated) : Uint8Array.from(atob(fallback!), (c) => c.charCodeAt(0));
    tokenKey = {
      from,
      key: crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveKey']).then((base) =>
        crypto.subtle.deriveKey(
          {
            name: 'HKDF',
            hash: 'SHA-256',
            salt: new TextEncoder().encode('tenant-platform'),
            info: new TextEncoder().encode(URL_TOKEN_LABEL),
          },
          base,
          { name: 'HMAC', hash: 'SHA-256', length: 256 },
          false,
          ['sign'],
        )
      ),
    };
  }
  return tokenKey.key;
}

/** The secret token in a tenant's Chatwoot webhook URL: HMAC of the tenant id and the
 *  token's generation under the URL-token key (40 hex characters, 160 bits). Generation
 *  0, the first, is the tenant id alone (the token every tenant had before tokens were
 *  rotated); each credentials rotation makes the next (urlTokenGenerations). */
export async function chatwootUrlToken(tenantId: string, generation = 0): Promise<string> {
  const text = generation > 0 ? `${URL_TOKEN_LABEL}:${tenantId}:${generation}` : `${URL_TOKEN_LABEL}:${tenantId}`;
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', await urlTokenKey(), new TextEncoder().encode(text)));
  return [...sig].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, 40);
}

/** Where a tenant's Chatwoot account webhook delivers: this project's webhooks function,
 *  the tenant in the path and its URL token (of this generation) in the query (what
 *  authenticates deliveries from Chatwoot versions that do not sign them). Provisioning
 *  creates the webhook with it; the services API shows it. */
export async function chatwootInboundUrl(tenantId: string, generation = 0): Promise<string> {
  return `${supabaseUrl()}/functions/v1/webhooks/chatwoot/${tenantId}?token=${await chatwootUrlToken(tenantId, generation)}`;
}

const notAuthenticated = () => unauthorized('invalid_signature', 'Webhook not authenticated: bad or missing signature or token');

/** Suspended (read-only) and deleted tenants take no events, nor tenants whose plan no
 *  longer includes Chatwoot (20261206154000). Checked after authentication and again in
 *  the transaction that applies the event, so an event racing a suspension writes
 *  nothing either. */
export async function requireChatwootTenantWritable(tx: Tx, tenantId: string): Promise<void> {
  const [t] = await tx<{ status: string; in_plan: boolean }>`
    select status, private.chatwoot_in_plan(id) as in_plan from public.tenants where id = ${tenantId}`;
  if (!t || t.status === 'deleted') throw notAuthenticated();
  if (t.status !== 'active') {
    throw forbidden('The tenant is suspended; it takes no Chatwoot events until resumed', 'tenant_suspended');
  }
  if (!t.in_plan) throw forbidden("The tenant's plan does not include Chatwoot", 'feature_not_in_plan');
}

export async function verifyChatwoot(
  tx: Tx,
  tenantId: string,
  body: string,
  headers: Headers,
  urlToken: string | null,
) {
  // No Chatwoot here — no row, Chatwoot switched off, or no such (or a deleted) tenant:
  // the same 401 as a bad token, so the URL says nothing about which tenants exist.
  const [svc] = await tx`
    select s.credentials_encrypted, s.external_ids ->> 'account_id' as account_id, s.external_ids
    from public.tenant_services s join public.tenants t on t.id = s.tenant_id
    where s.tenant_id = ${tenantId} and s.service = 'chatwoot' and s.desired_state <> 'removed'
      and t.status <> 'deleted'`;
  if (!svc) throw notAuthenticated();
  const sealed = svc.credentials_encrypted
    ? await decryptJson<{ webhook_secret?: string; webhook_former_secret?: string }>(svc.credentials_encrypted, {
      tenantId,
      service: 'chatwoot',
    })
    : undefined;
  const secret = sealed?.webhook_secret;
  // The secret of a webhook a rotation replaced, for what Chatwoot signed with it before.
  const former = withinFormerGrace(svc.external_ids?.webhook_secret_replaced_at) ? sealed?.webhook_former_secret : undefined;
  if (secret) {
    // A signing secret is configured: only a signed, fresh request counts (the URL
    // token no longer opens anything, so a leaked URL cannot be replayed or forged).
    // Every refusal before the signature matches is the one 401 a tenant without
    // Chatwoot gets: a tenant that has a secret must not answer otherwise (its missing
    // headers or stale timestamp told a stranger it exists and takes signed events).
    const signature = headers.get('x-chatwoot-signature') ?? '';
    // Digits only: Number() reads a missing or empty header as 0, a timestamp from 1970.
    const rawTs = headers.get('x-chatwoot-timestamp') ?? '';
    const ts = /^\d{1,12}$/.test(rawTs) ? Number(rawTs) : NaN;
    if (!signature || !Number.isFinite(ts)) throw notAuthenticated();
    let matched = false;
    for (const key of former ? [secret, former] : [secret]) {
      if (await secretEquals(`sha256=${await hmacHex(key, `${ts}.${body}`)}`, signature)) matched = true;
    }
    if (!matched) throw notAuthenticated();
    // Signed, but long ago: a replay (or a clock far off), told only to whoever signed it.
    if (Math.abs(Date.now() / 1000 - ts) > TOLERANCE_S) {
      throw unauthorized('stale_timestamp', 'The webhook timestamp is too old');
    }
  } else {
    let matched = false;
    for (const g of urlToken ? urlTokenGenerations(svc.external_ids).accepted : []) {
      if (await secretEquals(urlToken!, await chatwootUrlToken(tenantId, g))) matched = true;
    }
    if (!matched) throw notAuthenticated();
  }
  await requireChatwootTenantWritable(tx, tenantId);
  return { accountId: (svc.account_id as string | null) ?? null };
}

const STATUS: Record<string, string> = {
  open: 'open',
  pending: 'pending',
  snoozed: 'pending',
  resolved: 'resolved',
};

/** A conversation's number in its account (what the tenant's agents see, and what
 *  tickets record): `id` in current payloads, which Chatwoot fills with the display id
 *  (Conversations::EventDataPresenter), `display_id` in older ones. */
function conversationNumber(conversation: Payload | undefined): string | undefined {
  const raw = conversation?.display_id ?? conversation?.id;
  return raw !== undefined && raw !== null && /^\d{1,20}$/.test(String(raw)) ? String(raw) : undefined;
}

/** The ticket mirroring a conversation, created on first sight. */
async function ticketFor(tx: Tx, tenantId: string, conversation: Payload) {
  const conversationId = conversationNumber(conversation);
  if (conversationId === undefined) return undefined;
  // The number again in the tenant's new account (numbers restart in each): the former
  // account's ticket lets it go as it is looked up (20261207120000), and this
  // conversation gets its own.
  const [existing] = await tx`select * from private.chatwoot_conversation_ticket(${tenantId}, ${conversationId})`;
  if (existing) return existing;
  const sender = typeof conversation.meta?.sender === 'object' && conversation.meta.sender ? conversation.meta.sender : {};
  const name = typeof sender.name === 'string' ? sender.name : undefined;
  const first = Array.isArray(conversation.messages) ? conversation.messages[0]?.content : undefined;
  const title = firstCharacters(`Chat #${conversationId}${name ? ` from ${name}` : ''}`, 200);
  const [t] = await tx`
    insert into public.tickets (tenant_id, title, description, department, chatwoot_conversation_id, metadata, tags)
    values (${tenantId}, ${title}, ${
    typeof first === 'string' && first ? firstCharacters(first, 5000) : null
  }, 'support', ${conversationId},
            ${
    tx.json({
      chatwoot_inbox_id: conversation.inbox_id ?? null,
      contact: { name: name ?? null, email: typeof sender.email === 'string' ? sender.email : null },
    })
  },
            ${['chatwoot']})
    on conflict (tenant_id, chatwoot_conversation_id) where chatwoot_conversation_id is not null do nothing
    returning id, status, merged_into_id`;
  return t ??
    (await tx`select id, status, merged_into_id from public.tickets where tenant_id = ${tenantId} and chatwoot_conversation_id = ${conversationId}`)[
      0
    ];
}

/** Where a conversation's new messages go: its ticket, or the ticket that was merged into
 *  (a merged ticket takes no new messages), following merges made since. Each ticket is
 *  read under the lock the message's insert takes anyway (lock_parent_ticket): a merge
 *  committing meanwhile is waited for and followed, not met as a 409 that loses the
 *  message (Chatwoot does not send it again). */
async function ticketForMessages(tx: Tx, tenantId: string, conversation: Payload) {
  let ticket = await ticketFor(tx, tenantId, conversation);
  for (let hop = 0; ticket && hop < 10; hop++) {
    // Followed without locks to the last ticket of the chain, and only that one locked
    // (the handler never holds a ticket while waiting for the one before it in the chain,
    // as merge_tickets locks them in id order); merged meanwhile, the chain goes on.
    while (ticket?.merged_into_id && hop++ < 10) {
      [ticket] = await tx`select id, status, merged_into_id from public.tickets
        where tenant_id = ${tenantId} and id = ${ticket.merged_into_id}`;
    }
    if (!ticket) return undefined;
    [ticket] = await tx`select id, status, merged_into_id from public.tickets
      where tenant_id = ${tenantId} and id = ${ticket.id} for no key update`;
    if (!ticket?.merged_into_id) return ticket;
  }
  return undefined;
}

export async function applyChatwootEvent(
  tx: Tx,
  tenantId: string,
  event: Payload,
): Promise<'applied' | 'ignored'> {
  switch (event.event) {
    case 'conversation_created':
      return (await ticketFor(tx, tenantId, event)) ? 'applied' : 'ignored';
    case 'message_created': {
      const type = event.message_type;
      if (type === 'activity' || type === 2 || type === 'template' || type === 3) return 'ignored';
      // Our own replies, posted by the delivery job, come back: not a new message. One
      // whose id the job has not recorded yet (Chatwoot sends the webhook as it saves the
      // message, and a POST that timed out records none) is the pending reply of that
      // conversation with the same text from our own login: claimed as sent by this
      // echo, so the job does not post it again. Claimed first: it waits for a job
      // finishing that reply, whose id the check after it then finds.
      const outgoing = isOutgoing(type);
      const conversation = conversationNumber(event.conversation);
      if (outgoing && !event.private && typeof event.content === 'string' && conversation !== undefined) {
        const [{ claimed }] = await tx`
          select private.claim_chatwoot_echo(${tenantId}, ${conversation}, ${event.content},
                   ${event.sender?.type === 'user' && Number.isSafeInteger(event.sender?.id) ? event.sender.id : null}::bigint,
                   ${Number(event.id) || -1}::bigint) as claimed`;
        if (claimed) return 'ignored';
      }
      const [ours] = await tx`
        select 1 from private.chatwoot_replies where tenant_id = ${tenantId} and chatwoot_message_id = ${Number(event.id) || -1}`;
      if (ours) return 'ignored';
      const ticket = await ticketForMessages(tx, tenantId, event.conversation ?? {});
      if (!ticket) return 'ignored';
      const incoming = type === 'incoming' || type === 0;
      const note = !incoming && !!event.private;
      // Whose message it is, for the SLA and the rules (20261207103000): Chatwoot's agents
      // and contacts are no platform users, so the message has no author to tell. An
      // agent's (a Chatwoot user's) public reply is staff's; an agent bot's, or one with no
      // sender, answers no one. Set for this insert. A contact's message arriving at a
      // pending ticket, older than a status change already applied (Chatwoot sends its
      // webhooks in no fixed order), is kept as the conversation's history and answers no
      // one either: the agent set it pending after it, and handing the ticket back for it
      // would undo that. (At an open ticket it owes its reply as ever: the change after it
      // may be the very reopening it caused.)
      const side = incoming
        ? (ticket.status === 'pending' && await writtenBeforeLastStatus(tx, tenantId, ticket.id, event.created_at)
          ? ''
          : 'customer')
        : !note && outgoing && event.sender?.type === 'user'
        ? 'staff'
        : '';
      await tx`select set_config('private.message_side', ${side}, true)`;
      await tx`
        insert into public.ticket_messages (tenant_id, ticket_id, type, content)
        values (${tenantId}, ${ticket.id}, ${note ? 'note' : 'message'},
                ${
        // By characters: a cut by UTF-16 units could split an emoji, stored as U+FFFD.
        firstCharacters(typeof event.content === 'string' && event.content.trim() ? event.content : '[attachment]', 10000)})`;
      await tx`select set_config('private.message_side', '', true)`;
      // A customer writing again hands a pending ticket back to the agents: the trigger's,
      // from the side named above.
      return 'applied';
    }
    case 'conversation_status_changed': {
      const found = await ticketFor(tx, tenantId, event);
      // A merged ticket stays closed; its conversation's status is not the other ticket's.
      if (!found || found.merged_into_id) return 'ignored';
      // The ticket first (as a ticket's writers lock it), then the order of its events: a
      // ticket being deleted meanwhile is waited for, and its status is read afresh.
      const [ticket] = await tx`
        select id, status, merged_into_id from public.tickets where tenant_id = ${tenantId} and id = ${found.id} for no key update`;
      if (!ticket || ticket.merged_into_id) return 'ignored';
      // Chatwoot sends its webhooks in no fixed order: a change older than one applied
      // already changes nothing (migration 20261206141000).
      const changedAt = statusChangedAt(event);
      if (changedAt !== undefined) {
        const [{ newest }] = await tx`
          select private.chatwoot_status_is_newest(${tenantId}, ${ticket.id}, ${changedAt}::float8) as newest`;
        if (!newest) return 'ignored';
      }
      const target = STATUS[String(event.status)];
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

/** A time Chatwoot sends, in seconds: a number of seconds, as a number or text, or an
 *  ISO time. */
function seconds(v: unknown): number | undefined {
  const n = typeof v === 'number'
    ? v
    : typeof v !== 'string' || !v.trim()
    ? NaN
    : /^\d+(\.\d+)?$/.test(v.trim())
    ? Number(v)
    : Date.parse(v) / 1000;
  return Number.isFinite(n) ? n : undefined;
}

/** When Chatwoot changed the conversation, in seconds: `updated_at` (current versions,
 *  sub-second; seconds, or an ISO time), else `timestamp` (the last activity, whole
 *  seconds). */
function statusChangedAt(event: Payload): number | undefined {
  return seconds(event.updated_at) ?? seconds(event.timestamp);
}

/** Whether a message written at `createdAt` (its payload's, often whole seconds) surely
 *  came before the newest status change applied to the ticket: its whole second ended
 *  by then. A message without a time, or of the same second, is taken as newer. */
async function writtenBeforeLastStatus(tx: Tx, tenantId: string, ticketId: string, createdAt: unknown): Promise<boolean> {
  const at = seconds(createdAt);
  if (at === undefined) return false;
  const [{ since }] = await tx<{ since: boolean }>`
    select private.chatwoot_status_changed_since(${tenantId}, ${ticketId}, ${Math.floor(at) + 1}::float8) as since`;
  return since;
}

/** The Chatwoot account an event names, or null when it names none. Messages carry
 *  `account{id}`; conversation events (created, status changed, updated) carry no
 *  account of their own, only their last message's `account_id` in `messages[0]`
 *  (Conversations::EventDataPresenter, Message#push_event_data). */
export function chatwootEventAccount(event: Payload): string | null {
  const id = event.account?.id ?? (Array.isArray(event.messages) ? event.messages[0]?.account_id : undefined);
  return id === undefined || id === null ? null : String(id);
}

/** The deduplication key, from the (signed) body: Chatwoot's X-Chatwoot-Delivery header
 *  is not covered by the signature, so it cannot decide what counts as a repeat. A
 *  conversation's number counts within its account: the keys of conversation events name
 *  the tenant's account (`accountId`), so a new account's conversation #1 is no repeat of
 *  the old one's; message ids are Chatwoot's own, unique across accounts. */
export function chatwootEventId(event: Payload, accountId: string | null = null): string {
  if (event.event === 'message_created') return `message_created:${event.id}`;
  const conv = `${accountId === null ? '' : `a${accountId}:`}${event.conversation?.display_id ?? event.display_id ?? event.id}`;
  if (event.event === 'conversation_status_changed') {
    // updated_at first: a conversation resolved, reopened and resolved again with no
    // message between keeps its `timestamp` (the last activity), and the second
    // `resolved` would pass for a repeat of the first.
    const when = event.updated_at ?? event.timestamp ?? JSON.stringify(event.changed_attributes ?? null);
    return `status:${conv}:${event.status}:${when}`;
  }
  return `${event.event}:${conv}`;
}
