// n8n (self-hosted), Public API v1 with the instance owner's key. Two modes:
// - shared: the tenant's owner is invited to the shared instance (find by e-mail first);
// - projects: also a project per tenant (found by name), the owner added to it. This
//   needs n8n's feat:projectRole:admin licence: its 403 is a permanent, explained error.
// A key for another user cannot be minted through the public API: the owner's
// credentials are the invitation link.
import { type Connector, PartnerError, partnerFetch, type ProvisionContext } from './types.ts';

export interface N8nConfig {
  url: string;
  apiKey: string;
  mode: 'shared' | 'projects';
  timeoutMs?: number;
}

type InviteResult = { user: { id: string; email: string; inviteAcceptUrl?: string }; error?: string };

export function n8nConnector(config: N8nConfig): Connector {
  const base = `${config.url.replace(/\/$/, '')}/api/v1`;
  const call = async (path: string, opts: { method?: string; body?: unknown; accept?: number[] } = {}) => {
    try {
      return await partnerFetch('n8n', `${base}${path}`, {
        ...opts,
        headers: { 'x-n8n-api-key': config.apiKey },
        timeoutMs: config.timeoutMs,
      });
    } catch (err) {
      if (err instanceof PartnerError && err.status === 403 && /license/i.test(err.message)) {
        throw new PartnerError(
          'n8n',
          `the instance's licence does not allow this (set N8N_MODE=shared or upgrade n8n): ${err.message}`,
          false,
          403,
        );
      }
      throw err;
    }
  };
  const projectName = (ctx: ProvisionContext) => `tenant-${ctx.tenant.slug}`;

  async function findProject(ctx: ProvisionContext): Promise<string | undefined> {
    let cursor: string | undefined;
    do {
      const { body } = await call(
        `/projects?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      ) as {
        body: { data: { id: string; name: string }[]; nextCursor?: string | null };
      };
      const hit = body.data.find((p) => p.name === projectName(ctx));
      if (hit) return hit.id;
      cursor = body.nextCursor ?? undefined;
    } while (cursor);
    return undefined;
  }

  return {
    service: 'n8n',
    async ensure(ctx) {
      if (!ctx.admin) throw new PartnerError('n8n', 'the tenant has no admin to invite', false);
      const found = await call(`/users/${encodeURIComponent(ctx.admin.email)}`, { accept: [404] });
      let userId: string;
      let inviteUrl = (ctx.credentials?.invite_url as string | undefined) ?? null;
      if (found.status === 200) {
        userId = (found.body as { id: string }).id;
      } else {
        const { body } = await call('/users', {
          method: 'POST',
          body: [{ email: ctx.admin.email, role: 'global:member' }],
        }) as { body: InviteResult[] };
        if (!body[0]?.user?.id) {
          throw new PartnerError('n8n', `invitation refused: ${body[0]?.error ?? 'no user returned'}`, false);
        }
        userId = body[0].user.id;
        inviteUrl = body[0].user.inviteAcceptUrl ?? inviteUrl;
      }
      await ctx.checkpoint({ user_id: userId });
      const ids: Record<string, unknown> = { user_id: userId };
      if (config.mode === 'projects') {
        let projectId = await findProject(ctx);
        if (!projectId) {
          const { body } = await call('/projects', { method: 'POST', body: { name: projectName(ctx) } }) as {
            body: { id: string };
          };
          projectId = body.id;
        }
        await ctx.checkpoint({ project_id: projectId });
        await call(`/projects/${projectId}/users`, {
          method: 'POST',
          body: { relations: [{ userId, role: 'project:admin' }] },
          accept: [409],
        });
        ids.project_id = projectId;
      }
      return { externalIds: ids, credentials: { email: ctx.admin.email, invite_url: inviteUrl } };
    },
    // n8n's public API cannot disable a user; suspension is recorded here.
    async suspend() {},
    async resume() {},
    // The owner's n8n login is a person's, found by e-mail: they may own other tenants'
    // spaces too, so removal deletes the tenant's project and leaves the login.
    async remove(ctx) {
      if (ctx.externalIds.project_id) {
        await call(`/projects/${ctx.externalIds.project_id}`, { method: 'DELETE', accept: [404] });
      }
    },
    async check(ctx) {
      if (!ctx.externalIds.user_id) return false;
      return (await call(`/users/${ctx.externalIds.user_id}`, { accept: [404] })).status === 200;
    },
  };
}
