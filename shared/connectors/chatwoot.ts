// Chatwoot (self-hosted), Platform API. Accounts cannot be searched, so find-or-create
// goes through the owner: the user is find-or-create by e-mail, the tenant's account is
// looked up in that user's accounts (or the id recorded earlier), created only when
// absent and recorded at once, then linked (idempotent). Creates answer 200.
import { generatePassword } from '../crypto.ts';
import { type Connector, PartnerError, partnerFetch, type ProvisionContext } from './types.ts';

export interface ChatwootConfig {
  url: string;
  platformToken: string;
  timeoutMs?: number;
}

type User = { id: number; email: string; access_token?: string; accounts?: { id: number; name: string }[] };
type Account = { id: number; name: string; status?: string };

export function chatwootConnector(config: ChatwootConfig): Connector {
  const call = (path: string, opts: { method?: string; body?: unknown; accept?: number[] } = {}) =>
    partnerFetch('chatwoot', `${config.url.replace(/\/$/, '')}${path}`, {
      ...opts,
      headers: { api_access_token: config.platformToken },
      timeoutMs: config.timeoutMs,
    });
  const accountName = (ctx: ProvisionContext) => `${ctx.tenant.name} (${ctx.tenant.slug})`;
  const accountId = (ctx: ProvisionContext) => ctx.externalIds.account_id as number | undefined;

  async function setStatus(ctx: ProvisionContext, status: 'active' | 'suspended') {
    const id = accountId(ctx);
    if (!id) return;
    await call(`/platform/api/v1/accounts/${id}`, { method: 'PATCH', body: { status } });
  }

  return {
    service: 'chatwoot',
    async ensure(ctx) {
      if (!ctx.admin) throw new PartnerError('chatwoot', 'the tenant has no admin to own the account', false);
      // The password is chosen once and recorded before Chatwoot sees it, so a retry
      // sends the same one.
      let credentials = ctx.credentials as { email: string; password: string; access_token?: string } | null;
      if (!credentials?.password) {
        credentials = { email: ctx.admin.email, password: generatePassword() };
        await ctx.checkpoint({}, credentials);
      }
      const { body: user } = await call('/platform/api/v1/users', {
        method: 'POST',
        body: {
          name: ctx.admin.name,
          display_name: ctx.admin.name,
          email: ctx.admin.email,
          password: credentials.password,
          custom_attributes: { tenant_id: ctx.tenant.id },
        },
      }) as { body: User };
      await ctx.checkpoint({ user_id: user.id });

      let account: Account | undefined;
      if (accountId(ctx)) {
        const { status, body } = await call(`/platform/api/v1/accounts/${accountId(ctx)}`, { accept: [404] });
        if (status === 200) account = body as Account;
      }
      if (!account) {
        const { body: fresh } = await call(`/platform/api/v1/users/${user.id}`) as { body: User };
        const found = fresh.accounts?.find((a) => a.name === accountName(ctx));
        if (found) account = { id: found.id, name: found.name };
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
      await call(`/platform/api/v1/accounts/${account.id}/account_users`, {
        method: 'POST',
        body: { user_id: user.id, role: 'administrator' },
      });
      return {
        externalIds: { account_id: account.id, user_id: user.id },
        credentials: { ...credentials, access_token: user.access_token ?? credentials.access_token },
      };
    },
    async suspend(ctx) {
      await setStatus(ctx, 'suspended');
    },
    async resume(ctx) {
      await setStatus(ctx, 'active');
    },
    async remove(ctx) {
      const id = accountId(ctx);
      // Deletion is asynchronous at Chatwoot: an account already gone is a success.
      if (id) await call(`/platform/api/v1/accounts/${id}`, { method: 'DELETE', accept: [404] });
    },
    async check(ctx) {
      const id = accountId(ctx);
      if (!id) return false;
      return (await call(`/platform/api/v1/accounts/${id}`, { accept: [404] })).status === 200;
    },
  };
}

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
    `${config.url.replace(/\/$/, '')}/api/v1/accounts/${accountId}/conversations/${encodeURIComponent(conversationId)}/messages`,
    {
      method: 'POST',
      headers: { api_access_token: userToken },
      body: { content, message_type: 'outgoing', private: false },
      timeoutMs: config.timeoutMs,
    },
  ) as { body: { id: number } };
  return body.id;
}
