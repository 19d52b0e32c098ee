// Chatwoot (self-hosted), Platform API (checked against chatwoot/chatwoot develop's
// controllers and views, partner facts §1/§6). Accounts cannot be searched, so
// find-or-create goes through the owner: the user is find-or-create by e-mail, the
// tenant's account is looked up in that user's accounts (or the id recorded earlier),
// created only when absent and recorded at once, then linked (idempotent). Creates
// answer 200.
//
// The owner login. Chatwoot's POST /platform/api/v1/users returns an existing user
// unchanged — the password sent is NOT applied. So a password is stored (and shown) only
// for a login this tenant created: the user carries custom_attributes.tenant_id of this
// tenant, which only a user created by our own POST has. Any other login (the same
// person owns another tenant, or signed up at Chatwoot by themselves) is an existing
// login: no password is stored, the credentials say to sign in with the person's own
// password (or "Forgot password"), and we never overwrite a password someone else set.
// Rotating a login this tenant created sets the new password with PATCH …/users/{id}
// (the one call that applies it); until that call succeeded the credentials carry
// password_pending, so a crash in between retries the PATCH.
//
// The account webhook (conversation_created, message_created,
// conversation_status_changed) points at this tenant's inbound URL; it is found by URL
// before it is created (Chatwoot refuses a second one with the same URL), with the
// owner's user token (the Application API). Versions that sign deliveries (v4.11.2+)
// return its `secret`, which is kept with the tenant's encrypted credentials as
// webhook_secret — what inbound verification reads (shared/webhooks/chatwoot.ts). Older
// versions return none: the token in the URL authenticates their deliveries.
//
// Removal: Chatwoot deletes accounts (and users) in a background job, so a deleted
// account still reads as present for a while. Removal first suspends the account (access
// ends at once) and marks it (custom_attributes.deletion_requested_at), then deletes it;
// a marked account counts as gone for check() and is never reused by ensure(). The owner
// login is deleted too when this tenant created it and no other account uses it.
import { generatePassword } from '../crypto.ts';
import { type Connector, formerOwners, formerOwnersRecord, PartnerError, partnerFetch, type ProvisionContext } from './types.ts';

export interface ChatwootConfig {
  url: string;
  platformToken: string;
  timeoutMs?: number;
  /** The URL at which this tenant's account webhook delivers, with its URL token of this
   *  generation (shared/webhooks/chatwoot.ts); no webhook when unset. */
  inboundUrl?: (tenantId: string, generation?: number) => string | Promise<string>;
}

type User = {
  id: number;
  email: string;
  access_token?: string;
  custom_attributes?: Record<string, unknown>;
  accounts?: { id: number; name: string }[];
};
type Account = { id: number; name: string; status?: string; custom_attributes?: Record<string, unknown> };
type Webhook = { id: number; url: string; subscriptions?: string[]; secret?: string };

export interface ChatwootCredentials {
  email: string;
  /** Only for a login this tenant created. */
  password?: string;
  /** A new password chosen but not yet applied at Chatwoot (rotation). */
  password_pending?: boolean;
  /** The login existed before this tenant: its owner's own password applies. */
  existing_login?: boolean;
  note?: string;
  access_token?: string;
  webhook_secret?: string;
  /** The secret of the webhook a rotation replaced: it still verifies what Chatwoot
   *  signed before, for FORMER_URL_TOKEN_GRACE_MS after `webhook_secret_replaced_at`. */
  webhook_former_secret?: string;
}

export const CHATWOOT_WEBHOOK_EVENTS = ['conversation_created', 'message_created', 'conversation_status_changed'];
const EXISTING_LOGIN_NOTE =
  'This e-mail already had a Chatwoot login; sign in with its existing password (or use "Forgot password" on the Chatwoot login page).';
const DELETION_MARK = 'deletion_requested_at';
/** The controller reads params.require(:webhook) (Rails wraps a bare JSON body under that
 *  key); the swagger documents the fields at the top level: both are sent. */
const webhookBody = (fields: Record<string, unknown>) => ({ ...fields, webhook: fields });

/** How long the URL token a webhook was moved off still counts: deliveries Chatwoot
 *  queued before the move carry the URL as it was (its webhook job takes the URL when it
 *  is queued), and Chatwoot does not retry one refused. */
const FORMER_URL_TOKEN_GRACE_MS = 15 * 60_000;

/** Whether a move or replacement recorded at `at` (an ISO time in external_ids) is
 *  recent enough that what it replaced still counts: a former URL token, or a replaced
 *  webhook's signing secret. */
export function withinFormerGrace(at: unknown, now = Date.now()): boolean {
  const t = Date.parse(String(at ?? ''));
  return Number.isFinite(t) && now - t < FORMER_URL_TOKEN_GRACE_MS;
}

/** The URL token generations that authenticate a tenant's Chatwoot deliveries now, from
 *  what its service records (external_ids): url_token_generation, the current one, which
 *  a credentials rotation bumps (a token someone who left still knows stops working);
 *  webhook_url_generation, the one the webhook was last moved to, and every one since
 *  (a rotation may be asked again before the last one's job recorded its move); and for
 *  FORMER_URL_TOKEN_GRACE_MS after a move (webhook_url_moved_at), the ones it was moved
 *  off (webhook_url_former_generation), for the deliveries queued before. At most the
 *  ten latest. */
export function urlTokenGenerations(externalIds: Record<string, unknown> | null | undefined, now = Date.now()) {
  const n = (v: unknown) => (Number.isSafeInteger(Number(v)) && Number(v) > 0 ? Number(v) : 0);
  const current = n(externalIds?.url_token_generation);
  const hooked = n(externalIds?.webhook_url_generation);
  const recent = withinFormerGrace(externalIds?.webhook_url_moved_at, now);
  const lowest = Math.max(
    Math.min(hooked, recent ? n(externalIds?.webhook_url_former_generation) : hooked, current),
    current - 9,
  );
  const accepted = [];
  for (let g = current; g >= lowest; g--) accepted.push(g);
  return { current, hooked, accepted };
}

export function chatwootConnector(config: ChatwootConfig): Connector {
  const base = config.url.replace(/\/$/, '');
  const call = (path: string, opts: { method?: string; body?: unknown; accept?: number[]; token?: string } = {}) =>
    partnerFetch('chatwoot', `${base}${path}`, {
      method: opts.method,
      body: opts.body,
      accept: opts.accept,
      headers: { api_access_token: opts.token ?? config.platformToken },
      timeoutMs: config.timeoutMs,
    });
  const accountName = (ctx: ProvisionContext) => `${ctx.tenant.name} (${ctx.tenant.slug})`;
  const accountId = (ctx: ProvisionContext) => ctx.externalIds.account_id as number | undefined;
  const ours = (ctx: ProvisionContext, u: { custom_attributes?: Record<string, unknown> }) =>
    u.custom_attributes?.tenant_id === ctx.tenant.id;
  const live = (a: Account | undefined) => (a && !a.custom_attributes?.[DELETION_MARK] ? a : undefined);
  /** Whether another admin owns the account now than the one its stored login is for (the
   *  former one left, or can no longer sign in: private.provisioning_context names the
   *  oldest active admin). That login's password is the former owner's, who was shown it. */
  const ownerChanged = (ctx: ProvisionContext) => {
    const stored = ctx.credentials as { email?: string } | null;
    return !!ctx.admin && !!stored?.email && stored.email.toLowerCase() !== ctx.admin.email.toLowerCase();
  };

  async function getAccount(id: number): Promise<Account | undefined> {
    const { status, body } = await call(`/platform/api/v1/accounts/${id}`, { accept: [404] });
    return status === 200 ? body as Account : undefined;
  }

  async function setStatus(ctx: ProvisionContext, status: 'active' | 'suspended') {
    const id = accountId(ctx);
    if (!id) return;
    // An account deleted at Chatwoot has nothing to suspend; on resume, ensure (which
    // runs next) makes it again. A 404 here failed the service for good instead.
    await call(`/platform/api/v1/accounts/${id}`, { method: 'PATCH', body: { status }, accept: [404] });
  }

  /** The tenant's inbound URL now, the account's webhooks path, and the webhooks there
   *  (Chatwoot answers `payload` as the list, or as `{ webhooks }`). */
  async function accountWebhooks(ctx: ProvisionContext, account: number, token: string) {
    const url = await config.inboundUrl!(ctx.tenant.id, urlTokenGenerations(ctx.externalIds).current);
    const path = `/api/v1/accounts/${account}/webhooks`;
    const { body } = await call(path, { token }) as { body: { payload?: { webhooks?: Webhook[] } | Webhook[] } };
    const list = Array.isArray(body?.payload) ? body.payload : body?.payload?.webhooks ?? [];
    return { url, path, list, recorded: list.find((w) => w.id === ctx.externalIds.webhook_id) };
  }

  /** The account webhook at this tenant's inbound URL, found by URL or created. The one
   *  recorded for the tenant at another URL (the project moved, CHATWOOT_WEBHOOK_KEY
   *  changed the URL's token) is moved to the current URL, keeping its id and secret,
   *  rather than left sending every event to an address that refuses it. */
  async function ensureWebhook(ctx: ProvisionContext, account: number, token: string): Promise<Webhook> {
    const { url, path, list, recorded } = await accountWebhooks(ctx, account, token);
    const found = list.find((w) => w.url === url) ?? recorded;
    if (!found) {
      const body = webhookBody({ url, name: 'Tenant platform (tickets)', subscriptions: CHATWOOT_WEBHOOK_EVENTS });
      const { body: created } = await call(path, { method: 'POST', token, body }) as {
        body: { payload: { webhook: Webhook } };
      };
      return created.payload.webhook;
    }
    const missing = CHATWOOT_WEBHOOK_EVENTS.filter((e) => !found.subscriptions?.includes(e));
    if (!missing.length && found.url === url) return found;
    const { body: updated } = await call(`${path}/${found.id}`, {
      method: 'PATCH',
      token,
      body: webhookBody({ url, subscriptions: [...(found.subscriptions ?? []), ...missing] }),
    }) as { body: { payload: { webhook: Webhook } } };
    return { ...updated.payload.webhook, secret: updated.payload.webhook.secret ?? found.secret };
  }

  /** A new account webhook at this tenant's inbound URL, with a new secret, in place of
   *  the recorded one (left for the caller to delete once the new one is recorded: made
   *  first when the URLs differ, as a rotation's new URL token makes them, so no event
   *  falls between the two). One a lost answer made at the URL in the meantime is kept if
   *  its secret shows, else made again. */
  async function rekeyWebhook(
    ctx: ProvisionContext,
    account: number,
    token: string,
  ): Promise<{ fresh: Webhook; former?: number }> {
    const { url, path, list, recorded } = await accountWebhooks(ctx, account, token);
    const made = list.find((w) => w.url === url && w.id !== recorded?.id);
    // A Chatwoot that does not sign shows no secret for either: the one made is kept.
    if (made && (made.secret || !recorded?.secret)) return { fresh: made, former: recorded?.id };
    if (made) await call(`${path}/${made.id}`, { method: 'DELETE', token, accept: [404] });
    let former = recorded?.id;
    if (recorded && recorded.url === url) {
      // The same URL (no token in it to change): Chatwoot takes one webhook per URL.
      await call(`${path}/${recorded.id}`, { method: 'DELETE', token, accept: [404] });
      former = undefined;
    }
    const { body: created } = await call(path, {
      method: 'POST',
      token,
      body: webhookBody({ url, name: 'Tenant platform (tickets)', subscriptions: CHATWOOT_WEBHOOK_EVENTS }),
    }) as { body: { payload: { webhook: Webhook } } };
    return { fresh: created.payload.webhook, former };
  }

  return {
    service: 'chatwoot',
    async ensure(ctx) {
      if (!ctx.admin) throw new PartnerError('chatwoot', 'the tenant has no admin to own the account', false);
      const knownUser = ctx.externalIds.user_id as number | undefined;
      const stored = ctx.credentials as ChatwootCredentials | null;
      // What every checkpoint carries over: the owner token and the webhook's signing
      // secret. Replies go out with the token and inbound events are checked with the
      // secret while a rotation runs; a rotation that dropped them failed every reply in
      // that window for good and let the URL token alone authenticate events.
      // (And a replaced webhook's secret, for its grace: verifyChatwoot bounds it in time.)
      const kept: Pick<ChatwootCredentials, 'access_token' | 'webhook_secret' | 'webhook_former_secret'> = {
        ...(stored?.access_token ? { access_token: stored.access_token } : {}),
        ...(stored?.webhook_secret ? { webhook_secret: stored.webhook_secret } : {}),
        ...(stored?.webhook_former_secret ? { webhook_former_secret: stored.webhook_former_secret } : {}),
      };
      // A rotation asked for (private.rotate_service_credentials counts them) and not yet
      // begun: a new password, recorded with the count it answers in one checkpoint.
      const rotations = Number(ctx.externalIds.password_rotations ?? 0);
      const rotate = rotations > Number(ctx.externalIds.password_rotated ?? 0);
      // Another admin owns the account now: the new owner's login gets a password of its
      // own, never the former owner's.
      const newOwner = ownerChanged(ctx);
      // A password is chosen once and recorded before Chatwoot sees it, so a retry sends
      // the same one. Chosen while the user is already known (rotation, or credentials
      // lost), it is applied with a PATCH below.
      let credentials = stored;
      if (rotate || newOwner || (!credentials?.password && !credentials?.existing_login)) {
        credentials = {
          ...kept,
          email: ctx.admin.email,
          password: generatePassword(),
          // Not yet known to work: the login may exist already (its own password then),
          // or the create may keep failing. Not shown until it is (the reveal refuses).
          ...(knownUser ? { password_pending: true } : { password_unconfirmed: true }),
        };
        // A rotation also gives the webhook URL a new token (its generation, recorded with
        // the answer to the rotation): whoever knew the old one (an admin since removed)
        // can no longer post events with it once the webhook below has moved. A rotation
        // or a new owner also replaces the webhook (webhook_rekey, counted): its secret
        // was shown to whoever signed in to Chatwoot as the owner.
        const rekeyAsked = rotate || newOwner ? { webhook_rekey: Number(ctx.externalIds.webhook_rekey ?? 0) + 1 } : {};
        await ctx.checkpoint(
          rotate
            ? {
              password_rotated: rotations,
              url_token_generation: urlTokenGenerations(ctx.externalIds).current + 1,
              ...rekeyAsked,
            }
            : rekeyAsked,
          credentials as unknown as Record<string, unknown>,
        );
      }
      const owner = ctx.admin;
      const createUser = () =>
        call('/platform/api/v1/users', {
          method: 'POST',
          body: {
            name: owner.name,
            display_name: owner.name,
            email: owner.email,
            // Applied only when this call creates the user (an existing one is returned as is).
            password: credentials!.password ?? generatePassword(),
            custom_attributes: { tenant_id: ctx.tenant.id },
          },
        }) as Promise<{ body: User }>;
      let user: User;
      try {
        ({ body: user } = await createUser());
      } catch (err) {
        // Two tenants of one owner provisioned at once: the other's create saved the
        // e-mail between Chatwoot's lookup (User.from_email) and this one's save, whose
        // uniqueness validation answers 422 "Email has already been taken". Asked again,
        // Chatwoot finds the login.
        if (!(err instanceof PartnerError && err.status === 422 && /already been taken/i.test(err.message))) throw err;
        ({ body: user } = await createUser());
      }
      const created = ours(ctx, user);
      // Former owners' logins are recorded until their link to the account is gone (below),
      // so a retry after this checkpoint still removes them — all of them, should the
      // owner change again before that.
      const formers = formerOwners<number>(ctx.externalIds, user.id);
      await ctx.checkpoint({
        user_id: user.id,
        owner_login: created ? 'created' : 'existing',
        ...formerOwnersRecord(formers),
      });
      if (created && (!credentials!.password || credentials!.password_pending)) {
        // Ours, with a password that may not be the one it has (rotation, or the login made
        // again after credentials said it pre-existed): choose, record, then apply it.
        if (!credentials!.password) {
          credentials = { ...kept, email: ctx.admin.email, password: generatePassword(), password_pending: true };
          await ctx.checkpoint({}, credentials as unknown as Record<string, unknown>);
        }
        await call(`/platform/api/v1/users/${user.id}`, { method: 'PATCH', body: { password: credentials!.password } });
        credentials = { ...kept, email: credentials!.email, password: credentials!.password };
        await ctx.checkpoint({}, credentials as unknown as Record<string, unknown>);
      }
      credentials = created
        ? { ...kept, email: ctx.admin.email, password: credentials!.password }
        : { ...kept, email: ctx.admin.email, existing_login: true, note: EXISTING_LOGIN_NOTE };

      // An account this tenant's removal marked is going, or was to go when its DELETE
      // failed and the removal was called off (a restore, Chatwoot switched on again):
      // its deletion is asked for (again: Chatwoot answers 200, or 404 once it is gone)
      // before a new account takes its place, or it would be left at Chatwoot for good,
      // conversations and all, with nothing here recording it.
      const finishDeletion = async (a: Account) => {
        if (a.custom_attributes?.tenant_id === ctx.tenant.id && a.custom_attributes?.[DELETION_MARK]) {
          await call(`/platform/api/v1/accounts/${a.id}`, { method: 'DELETE', accept: [404] });
        }
      };
      const recorded = accountId(ctx) ? await getAccount(accountId(ctx)!) : undefined;
      let account = live(recorded);
      if (recorded && !account) await finishDeletion(recorded);
      if (!account) {
        const { body: fresh } = await call(`/platform/api/v1/users/${user.id}`) as { body: User };
        for (const a of fresh.accounts ?? []) {
          if (a.name !== accountName(ctx) || a.id === recorded?.id) continue;
          const found = await getAccount(a.id);
          const candidate = live(found);
          if (candidate && candidate.custom_attributes?.tenant_id === ctx.tenant.id) {
            account = candidate;
            break;
          }
          if (found) await finishDeletion(found);
        }
      }
      if (!account) {
        const { body } = await call('/platform/api/v1/accounts', {
          method: 'POST',
          body: {
            name: accountName(ctx),
            status: 'active',
            custom_attributes: { tenant_id: ctx.tenant.id, tenant_slug: ctx.tenant.slug },
          },
        });
        account = body as Account;
        await ctx.checkpoint({ account_id: account.id });
      }
      // Former owners are no longer the account's administrators (a no-op when the link is
      // gone already) — before the account is active again, so an owner who left while the
      // tenant was suspended never has it back, whatever fails after. Their logins stay:
      // each may be theirs, or serve another tenant.
      for (const former of formers) {
        await call(`/platform/api/v1/accounts/${account.id}/account_users`, { method: 'DELETE', body: { user_id: former } });
      }
      // ensure runs for an active service: an account suspended at Chatwoot (by an
      // operator, or a resume that never ran) is drift — its users are refused.
      if (account.status && account.status !== 'active') {
        await call(`/platform/api/v1/accounts/${account.id}`, { method: 'PATCH', body: { status: 'active' } });
      }
      await call(`/platform/api/v1/accounts/${account.id}/account_users`, {
        method: 'POST',
        body: { user_id: user.id, role: 'administrator' },
      });
      const externalIds: Record<string, unknown> = { account_id: account.id, user_id: user.id };
      if (formers.length) externalIds.former_user_ids = [];
      const accessToken = user.access_token ?? kept.access_token;
      if (config.inboundUrl && accessToken) {
        const rekey = Number(ctx.externalIds.webhook_rekey ?? 0);
        const rekeyPending = rekey > Number(ctx.externalIds.webhook_rekeyed ?? 0);
        let hook: Webhook;
        // Only a webhook that signs has a secret to replace (an older Chatwoot's is moved
        // to the new URL below, its URL token being what authenticates).
        if (rekeyPending && kept.webhook_secret) {
          // Replaced (rekeyWebhook): the secret the owner's login could read goes; the new
          // webhook is recorded first, then the old one deleted. Events Chatwoot signed
          // with the old secret before (queued, or retried) still count for a while, as a
          // former URL token's do.
          const { fresh, former } = await rekeyWebhook(ctx, account.id, accessToken);
          credentials = {
            ...credentials!,
            ...(fresh.secret ? { webhook_secret: fresh.secret } : {}),
            webhook_former_secret: kept.webhook_secret,
          };
          await ctx.checkpoint(
            {
              webhook_id: fresh.id,
              webhook_rekeyed: rekey,
              webhook_former_id: former ?? null,
              webhook_secret_replaced_at: new Date().toISOString(),
            },
            credentials as unknown as Record<string, unknown>,
          );
          hook = fresh;
        } else {
          hook = await ensureWebhook(ctx, account.id, accessToken);
          if (rekeyPending) externalIds.webhook_rekeyed = rekey;
        }
        // The webhook a re-keying replaced (recorded until it is gone, so a retry removes it).
        const former = ctx.externalIds.webhook_former_id as number | null | undefined;
        if (former && former !== hook.id) {
          await call(`/api/v1/accounts/${account.id}/webhooks/${former}`, {
            method: 'DELETE',
            token: accessToken,
            accept: [404],
          });
        }
        if (former) externalIds.webhook_former_id = null;
        externalIds.webhook_id = hook.id;
        if (hook.secret) credentials.webhook_secret = hook.secret;
      }
      // The webhook is at the current token's URL now (or there is none to move: one set
      // up by hand takes the URL the services API shows): the former token stops counting.
      const generations = urlTokenGenerations(ctx.externalIds);
      if (generations.hooked !== generations.current) {
        externalIds.webhook_url_generation = generations.current;
        externalIds.webhook_url_former_generation = generations.hooked;
        externalIds.webhook_url_moved_at = new Date().toISOString();
      }
      return { externalIds, credentials: { ...credentials, access_token: accessToken } as Record<string, unknown> };
    },
    async suspend(ctx) {
      await setStatus(ctx, 'suspended');
    },
    async resume(ctx) {
      // The owner changed while the tenant was suspended: the account's administrator is
      // still the former owner (who was shown its password), so it stays suspended here;
      // ensure, which runs next, takes the former owner out, then activates it.
      if (ownerChanged(ctx)) return;
      await setStatus(ctx, 'active');
    },
    async remove(ctx) {
      const id = accountId(ctx);
      const account = id ? await getAccount(id) : undefined;
      if (account) {
        // Access ends now; the deletion itself runs later at Chatwoot.
        await call(`/platform/api/v1/accounts/${id}`, {
          method: 'PATCH',
          body: {
            status: 'suspended',
            custom_attributes: {
              ...account.custom_attributes,
              [DELETION_MARK]: account.custom_attributes?.[DELETION_MARK] ?? new Date().toISOString(),
            },
          },
        });
        await call(`/platform/api/v1/accounts/${id}`, { method: 'DELETE', accept: [404] });
      }
      const userId = ctx.externalIds.user_id as number | undefined;
      if (userId) {
        const { status, body } = await call(`/platform/api/v1/users/${userId}`, { accept: [404] });
        const user = body as User;
        // Only a login this tenant created, and only when no other account uses it.
        if (status === 200 && ours(ctx, user) && !(user.accounts ?? []).some((a) => a.id !== id)) {
          await call(`/platform/api/v1/users/${userId}`, { method: 'DELETE', accept: [404] });
        }
      }
    },
    async check(ctx) {
      const id = accountId(ctx);
      const account = id ? live(await getAccount(id)) : undefined;
      if (!id || !account) return false;
      // Suspended at Chatwoot while active here (checks run for active services only) is
      // drift, which ensure repairs; Chatwoot would also refuse the webhook list below for
      // it (401 "Account is suspended"), and the check would fail on every run instead.
      if (account.status && account.status !== 'active') return false;
      const token = (ctx.credentials as ChatwootCredentials | null)?.access_token;
      const hookId = ctx.externalIds.webhook_id as number | undefined;
      if (config.inboundUrl && token && hookId) {
        const { status, body } = await call(`/api/v1/accounts/${id}/webhooks`, { token, accept: [401] }) as {
          status: number;
          body: { payload?: { webhooks?: Webhook[] } };
        };
        // The owner's token no longer works here (the login deleted or unlinked at
        // Chatwoot, its token reset): drift, which ensure repairs by finding the login
        // again. Failing the check left every reply posted with it failing for good.
        if (status === 401) return false;
        // There, and at the URL this deployment answers now (a moved project or a new
        // CHATWOOT_WEBHOOK_KEY changes it): anything else is drift, which ensure repairs.
        const url = await config.inboundUrl(ctx.tenant.id, urlTokenGenerations(ctx.externalIds).current);
        if (!(body?.payload?.webhooks ?? []).some((w) => w.id === hookId && w.url === url)) return false;
      }
      return true;
    },
  };
}

/** A conversation's messages (Application API): where replies are posted and listed. */
const messagesUrl = (url: string, accountId: number, conversationId: string) =>
  `${url.replace(/\/$/, '')}/api/v1/accounts/${accountId}/conversations/${encodeURIComponent(conversationId)}/messages`;

/** Whether a message is outgoing: Chatwoot writes message_type as its name in webhooks and
 *  as its integer (1) in API lists. */
export const isOutgoing = (messageType: unknown): boolean => messageType === 'outgoing' || messageType === 1;

/** Posts a reply written here into the Chatwoot conversation (Application API, with the
 *  tenant's owner token) and returns Chatwoot's message id. */
export async function postChatwootReply(
  config: { url: string; timeoutMs?: number },
  accountId: number,
  conversationId: string,
  userToken: string,
  content: string,
): Promise<number> {
  const { body } = await partnerFetch(
    'chatwoot',
    messagesUrl(config.url, accountId, conversationId),
    {
      method: 'POST',
      headers: { api_access_token: userToken },
      body: { content, message_type: 'outgoing', private: false },
      timeoutMs: config.timeoutMs,
    },
  ) as { body: { id: number } };
  return body.id;
}

/** messages#index's page (MessageFinder's latest and `before` limits). */
const PAGE_SIZE = 20;
/** How far back a retry looks for its reply: 25 pages, 500 messages. */
const FIND_PAGES = 25;

/** A message of a conversation as Chatwoot lists it (`GET …/messages`: its latest 20,
 *  oldest first; `message_type` as its integer, 1 for outgoing; `created_at` in Unix
 *  seconds; `sender` the user or contact who wrote it). */
interface ListedMessage {
  id: number;
  content?: string | null;
  message_type?: number | string;
  private?: boolean;
  created_at?: number;
  sender?: { id?: number; type?: string } | null;
}

/** The id of a reply already in the conversation: an outgoing, public message of the
 *  tenant's owner login (`senderId`) with this text, saved since `since`, and not one
 *  another reply recorded (`taken`). A POST that timed out may have been saved: the job
 *  asks this before posting again. Undefined when there is none among the messages
 *  since then (as far back as FIND_PAGES pages). */
export async function findChatwootReply(
  config: { url: string; timeoutMs?: number },
  accountId: number,
  conversationId: string,
  userToken: string,
  wanted: { content: string; senderId: number; since: Date; taken: (id: number) => Promise<boolean> },
): Promise<number | undefined> {
  // Chatwoot's clock and ours may differ by a little: a minute of slack.
  const since = Math.floor(wanted.since.getTime() / 1000) - 60;
  // The conversation's latest 20, then the 20 before each page's oldest (`before`,
  // MessageFinder), until a page reaches back past the reply's time: a retry may come an
  // hour after the lost POST (its backoff, or a day: a Retry-After), and a busy
  // conversation has more than one page by then. Bounded: a reply not found within
  // FIND_PAGES pages is posted again.
  let before: number | undefined;
  for (let page = 0; page < FIND_PAGES; page++) {
    const url = messagesUrl(config.url, accountId, conversationId) + (before === undefined ? '' : `?before=${before}`);
    const { body } = await partnerFetch('chatwoot', url, {
      headers: { api_access_token: userToken },
      timeoutMs: config.timeoutMs,
    }) as { body: { payload?: ListedMessage[] } };
    const listed = body?.payload ?? [];
    for (const m of listed) {
      const outgoing = isOutgoing(m.message_type);
      if (
        outgoing && !m.private && m.content === wanted.content && m.sender?.id === wanted.senderId &&
        (m.sender?.type ?? 'user') === 'user' && (m.created_at ?? 0) >= since && !(await wanted.taken(m.id))
      ) return m.id;
    }
    const oldest = listed.reduce<ListedMessage | undefined>((o, m) => (!o || m.id < o.id ? m : o), undefined);
    if (!oldest || listed.length < PAGE_SIZE || (oldest.created_at ?? 0) < since) return undefined;
    before = oldest.id;
  }
  return undefined;
}
