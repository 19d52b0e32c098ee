// n8n (self-hosted), Public API v1 with the instance owner's key. Two modes:
// - shared: the tenant's owner is invited to the shared instance (find by e-mail first);
// - projects: also a project per tenant (found by name), the owner added to it. This
//   needs n8n's feat:projectRole:admin licence: its 403 is a permanent, explained error.
// A key for another user cannot be minted through the public API: the owner's
// credentials are the invitation link.
//
// Checked against the real n8n 2.8.4 (npm run test:n8n; the answers are recorded in
// tests/partners/n8n.ts):
// - POST /users for an e-mail still pending answers 201 with the same id and a fresh
//   inviteAcceptUrl; for a login that already joined it answers 201 `[]`.
// - DELETE /users/{missing} answers 400 "… user to delete was not found in DB" and
//   DELETE /projects/{missing} 400 "Could not find project with ID: …": both count as
//   already removed.
// - POST /projects makes a second project of the same name (no uniqueness): find first.
// - GET /projects lists personal projects too (type "personal").
// - POST /projects/{id}/users is an upsert (201 when repeated), DELETE
//   /projects/{id}/users/{userId} answers 204 also when the member is already gone.
// - A project role below admin (project:viewer, project:editor) needs another licence,
//   and the public API has no disable-user: suspension removes the member from the
//   tenant's project and stops its active workflows (projects mode), and can do nothing
//   in shared mode (the login's workflows are the person's, maybe for other tenants too).
// - Not recorded from 2.8.4 (partner-apis.md §2 only): GET /workflows?projectId=&active=
//   and POST /workflows/{id}/activate|deactivate (200; 404 for a missing workflow).
import { type Connector, formerOwners, formerOwnersRecord, PartnerError, partnerFetch, type ProvisionContext } from './types.ts';

export interface N8nConfig {
  url: string;
  apiKey: string;
  mode: 'shared' | 'projects';
  timeoutMs?: number;
}

type Invite = { user?: { id?: string; email?: string; inviteAcceptUrl?: string }; error?: string };
type N8nUser = { id: string; email: string; isPending: boolean; role?: string };
type TeamProject = { id: string; name: string };

/** n8n's answers for an object that is not there (any more). */
function gone(err: unknown): boolean {
  return err instanceof PartnerError &&
    (err.status === 404 || (err.status === 400 && /could not find|not found in DB/i.test(err.message)));
}

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
        // Two licence gates: the projects feature (shared mode needs none), and the user
        // reads, which need a licence without a user quota whatever the mode.
        const advice = path.startsWith('/users')
          ? "the instance's licence limits its users, and n8n's /users API needs an unlimited user quota: " +
            'use a licence without a user limit (or none: the community edition has no limit)'
          : "the instance's licence does not allow this (set N8N_MODE=shared or upgrade n8n)";
        throw new PartnerError('n8n', `${advice}: ${err.message}`, false, 403);
      }
      throw err;
    }
  };
  /** A removal: an object already gone counts as removed. */
  const removeCall = async (path: string) => {
    try {
      await call(path, { method: 'DELETE' });
    } catch (err) {
      if (!gone(err)) throw err;
    }
  };
  const projectName = (ctx: ProvisionContext) => `tenant-${ctx.tenant.slug}`;

  async function findUser(idOrEmail: string): Promise<N8nUser | undefined> {
    const { status, body } = await call(`/users/${encodeURIComponent(idOrEmail)}?includeRole=true`, { accept: [404] });
    return status === 200 ? body as N8nUser : undefined;
  }

  /** The name when another tenant's project already has the tenant's (a slug given up and
   *  taken again): with the tenant id's first letters, so a lost create is found again. */
  const uniqueProjectName = (ctx: ProvisionContext) => `${projectName(ctx)}-${ctx.tenant.id.slice(0, 8)}`;

  /** The team project of this tenant's name (or its unique one) that no other tenant's
   *  service records: a slug can change, and a later tenant get the old one (and with it
   *  the name). Every project of those names is looked at, not only the first. Without
   *  the count, assume each is someone's. */
  async function unclaimedProjectNamed(ctx: ProvisionContext, projects: TeamProject[]): Promise<string | undefined> {
    const names = [projectName(ctx), uniqueProjectName(ctx)];
    for (const { id } of projects.filter((p) => names.includes(p.name))) {
      if (ctx.otherTenantsUsing && await ctx.otherTenantsUsing('project_id', id) === 0) return id;
    }
    return undefined;
  }

  /** Every team project, in the order n8n lists them (personal projects are listed too,
   *  and left out). */
  async function teamProjects(): Promise<TeamProject[]> {
    const projects: TeamProject[] = [];
    let cursor: string | undefined;
    do {
      const { body } = await call(
        `/projects?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      ) as {
        body: { data: { id: string; name: string; type?: string }[]; nextCursor?: string | null };
      };
      for (const p of body.data) if (p.type !== 'personal') projects.push({ id: p.id, name: p.name });
      cursor = body.nextCursor ?? undefined;
    } while (cursor);
    return projects;
  }

  async function isMember(projectId: string, userId: string): Promise<boolean> {
    let cursor: string | undefined;
    do {
      const { body } = await call(
        `/users?projectId=${encodeURIComponent(projectId)}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      ) as { body: { data: { id: string }[]; nextCursor?: string | null } };
      if (body.data.some((u) => u.id === userId)) return true;
      cursor = body.nextCursor ?? undefined;
    } while (cursor);
    return false;
  }

  /** The ids of a project's active workflows (paged). */
  async function activeWorkflows(projectId: string): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const { body } = await call(
        `/workflows?projectId=${encodeURIComponent(projectId)}&active=true&limit=100${
          cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''
        }`,
      ) as { body: { data: { id: string; active?: boolean }[]; nextCursor?: string | null } };
      for (const w of body.data) if (w.active !== false) ids.push(w.id);
      cursor = body.nextCursor ?? undefined;
    } while (cursor);
    return ids;
  }

  /** Whether another tenant's service records this login (unknown: assume so). */
  const usedElsewhere = async (ctx: ProvisionContext, userId: string) =>
    (ctx.otherTenantsUsing ? await ctx.otherTenantsUsing('user_id', userId) : 1) > 0;

  /** The owner's n8n user: the recorded id, else the login of their e-mail (an invitation
   *  whose answer was lost is at n8n, maybe e-mailed, with no id recorded: a suspension or
   *  removal must still revoke it). */
  const ownerId = async (ctx: ProvisionContext) =>
    ctx.externalIds.user_id as string | undefined ?? (ctx.admin ? (await findUser(ctx.admin.email))?.id : undefined);

  /** The tenant's team project (projects mode): the recorded one, else found by its name,
   *  never one another tenant's service records (a create whose answer was lost). */
  const tenantProject = async (ctx: ProvisionContext) =>
    ctx.externalIds.project_id as string | undefined ??
      (config.mode === 'projects' ? await unclaimedProjectNamed(ctx, await teamProjects()) : undefined);

  /** Deletes a login the tenant made, unless another tenant's service records it, it is
   *  one of n8n's own admins, or it is the person's own (found joined when the tenant
   *  recorded it: theirs to keep, and at n8n their personal workflows and credentials
   *  with it). One found by e-mail alone (`recorded` false) goes only while pending. */
  async function dropLogin(ctx: ProvisionContext, userId: string, ownerLogin: unknown, recorded = true) {
    if (await usedElsewhere(ctx, userId)) return;
    const user = await findUser(userId);
    if (!user || (user.role !== undefined && user.role !== 'global:member')) return;
    if (!recorded && !user.isPending) return;
    if (ownerLogin === 'existing' && !user.isPending) return;
    await removeCall(`/users/${encodeURIComponent(userId)}`);
  }

  /** Invites the e-mail, or finds the login it already is. */
  async function invite(email: string): Promise<{ id: string; inviteUrl: string | null }> {
    const { body } = await call('/users', { method: 'POST', body: [{ email, role: 'global:member' }] }) as {
      body: Invite[];
    };
    const hit = Array.isArray(body) ? body[0] : undefined;
    if (hit?.user?.id) return { id: hit.user.id, inviteUrl: hit.user.inviteAcceptUrl ?? null };
    if (hit?.error) throw new PartnerError('n8n', `invitation refused: ${hit.error}`, false);
    // 201 [] : the login exists and has joined (n8n leaves it out of the answer).
    const joined = await findUser(email);
    if (!joined) throw new PartnerError('n8n', 'the invitation returned no user and none was found', true);
    return { id: joined.id, inviteUrl: null };
  }

  return {
    service: 'n8n',
    async ensure(ctx) {
      if (!ctx.admin) throw new PartnerError('n8n', 'the tenant has no admin to invite', false);
      const found = await findUser(ctx.admin.email);
      let userId: string;
      let inviteUrl: string | null;
      if (found && !found.isPending) {
        // Joined: the login is theirs, there is no invitation to show.
        userId = found.id;
        inviteUrl = null;
      } else if (found && found.id === ctx.externalIds.user_id) {
        // Still pending, and already this tenant's: its invitation stands, link and all.
        // Posting again mails it again (n8n sends every pending user's invitation anew):
        // each retry, resume, hand-over or drift repair sent the owner another e-mail.
        userId = found.id;
        inviteUrl = typeof ctx.credentials?.invite_url === 'string' ? ctx.credentials.invite_url : null;
      } else {
        // New, or still pending: posting again returns the same user with its link.
        ({ id: userId, inviteUrl } = await invite(ctx.admin.email));
      }
      const credentials = { email: ctx.admin.email, invite_url: inviteUrl };
      const changed = ctx.credentials?.email !== credentials.email || ctx.credentials?.invite_url !== inviteUrl;
      // Whose login it is, judged when the tenant first records it: a login that had
      // joined before this tenant invited anyone is the person's own (made for another
      // tenant, or by hand), and removal leaves it; an invitation's is the tenant's. A
      // login recorded before owner_login was kept is not judged now (joined since, it may
      // be either): removal treats it as before, as the tenant's.
      const firstSeen = ctx.externalIds.user_id !== userId;
      const formerLogins = (ctx.externalIds.former_logins as string[] | undefined) ?? [];
      // A former owner who owns the space again: a login the tenant's invitation made is
      // still the tenant's (joined since, it would pass for the person's own).
      const ownerLogin = firstSeen
        ? (formerLogins.includes(userId) ? 'invited' : found && !found.isPending ? 'existing' : 'invited')
        : ctx.externalIds.owner_login;
      // Another admin owns the tenant's space now (the former owner left, was demoted or
      // can no longer sign in: private.provisioning_context names the oldest active
      // admin). The former owner leaves the tenant's project (below; recorded until then,
      // so a retry finishes it). Their login stays — in shared mode the tenant's workflows
      // are theirs, and deleting a login deletes its workflows — but one the tenant made
      // (its invitation) is kept in former_logins, for the tenant's removal to delete as it
      // deletes the owner's.
      const known = ctx.externalIds.user_id as string | undefined;
      const formers = formerOwners(ctx.externalIds, userId);
      const ids: Record<string, unknown> = { user_id: userId, ...(ownerLogin ? { owner_login: ownerLogin } : {}) };
      const tenantMade = known !== undefined && known !== userId && ctx.externalIds.owner_login !== 'existing';
      const logins = [...new Set([...formerLogins, ...(tenantMade ? [known] : [])])].filter((id) => id !== userId);
      if (logins.length !== formerLogins.length || logins.some((id, i) => id !== formerLogins[i])) ids.former_logins = logins;
      Object.assign(ids, formerOwnersRecord(formers));
      await ctx.checkpoint(ids, changed ? credentials : undefined);
      if (config.mode === 'projects') {
        // The project recorded, while it exists (a slug can change later, and the name with
        // it); else the one of this tenant's name (a create whose answer was lost).
        const recorded = ctx.externalIds.project_id as string | undefined;
        const projects = await teamProjects(); // listed once for the lookups below
        let projectId = recorded && projects.some((p) => p.id === recorded) ? recorded : undefined;
        projectId ??= await unclaimedProjectNamed(ctx, projects);
        if (!projectId) {
          // The tenant's name, unless another tenant's project has it.
          const taken = projects.some((p) => p.name === projectName(ctx));
          const name = taken ? uniqueProjectName(ctx) : projectName(ctx);
          const { body } = await call('/projects', { method: 'POST', body: { name } }) as {
            body: { id: string };
          };
          projectId = body.id;
        }
        await ctx.checkpoint({ project_id: projectId });
        // An upsert at n8n (201 again when the member is there): also restores access
        // after a suspension.
        await call(`/projects/${encodeURIComponent(projectId)}/users`, {
          method: 'POST',
          body: { relations: [{ userId, role: 'project:admin' }] },
        });
        ids.project_id = projectId;
        // The workflows a suspension stopped run again (here, not in resume(): a run that
        // failed after the suspension skips resume). One deleted since (404), or that n8n
        // no longer activates (400: a trigger's credentials gone, say), stays as it is.
        const paused = (ctx.externalIds.paused_workflows as string[] | undefined) ?? [];
        for (const id of paused) {
          await call(`/workflows/${encodeURIComponent(id)}/activate`, { method: 'POST', accept: [400, 404] });
        }
        if (paused.length) {
          await ctx.checkpoint({ paused_workflows: [] });
          ids.paused_workflows = [];
        }
        // A no-op when the member is gone already (204 either way).
        for (const former of formers) {
          await removeCall(`/projects/${encodeURIComponent(projectId)}/users/${encodeURIComponent(former)}`);
        }
      }
      if (formers.length) ids.former_user_ids = [];
      return { externalIds: ids, ...(changed ? { credentials } : {}) };
    },
    // Projects mode: the member leaves the tenant's project, and its active workflows
    // stop (their triggers, schedules and calls with the tenant's credentials ran on
    // through a suspension, and the week of a deletion's grace): recorded first, so a
    // retry and the resume know them, then deactivated; ensure() activates them again.
    // The project and its workflows stay. Shared mode: a pending invitation that no other tenant uses is
    // revoked (resume invites again, with a new link); a login that has joined cannot be
    // disabled — n8n's public API has no such call, and changing a global role needs
    // feat:advancedPermissions.
    async suspend(ctx) {
      const userId = await ownerId(ctx);
      if (config.mode === 'projects') {
        const projectId = await tenantProject(ctx);
        // Former owners a failed run left in the project too. With no owner found (no
        // admin left, an id never recorded), the workflows still stop.
        const members = [...(userId ? [userId] : []), ...formerOwners<string>(ctx.externalIds, userId ?? '')];
        for (const member of projectId ? members : []) {
          await removeCall(`/projects/${encodeURIComponent(projectId!)}/users/${encodeURIComponent(member)}`);
        }
        if (!projectId) return;
        const recorded = (ctx.externalIds.paused_workflows as string[] | undefined) ?? [];
        const active = await activeWorkflows(projectId);
        const paused = [...new Set([...recorded, ...active])];
        if (paused.length !== recorded.length) await ctx.checkpoint({ paused_workflows: paused });
        for (const id of active) {
          await call(`/workflows/${encodeURIComponent(id)}/deactivate`, { method: 'POST', accept: [404] });
        }
        return { externalIds: { paused_workflows: paused } };
      }
      if (!userId || await usedElsewhere(ctx, userId)) return;
      const user = await findUser(userId);
      if (user?.isPending && user.role === 'global:member') await removeCall(`/users/${encodeURIComponent(userId)}`);
    },
    // ensure() runs after resume: it puts the member back into the project, or invites
    // again.
    async resume() {},
    // The tenant's project goes; the owner's login goes too unless another tenant's
    // service still uses it, it is one of n8n's own admins, or it was the person's own
    // before the tenant (owner_login); going, a pending invitation is revoked.
    async remove(ctx) {
      const userId = await ownerId(ctx);
      const projectId = await tenantProject(ctx);
      if (projectId) await removeCall(`/projects/${encodeURIComponent(projectId)}`);
      // Former owners' logins the tenant made go as the owner's does.
      for (const former of (ctx.externalIds.former_logins as string[] | undefined) ?? []) {
        if (former !== userId) await dropLogin(ctx, former, 'invited');
      }
      if (!userId) return;
      // Found by e-mail (no id recorded): the current admin's, maybe someone's own login
      // made elsewhere. Only a pending invitation, which the lost answer may have made, goes.
      await dropLogin(ctx, userId, ctx.externalIds.owner_login, !!ctx.externalIds.user_id);
    },
    async check(ctx) {
      const { project_id: projectId, user_id: userId } = ctx.externalIds as { project_id?: string; user_id?: string };
      if (!userId || !(await findUser(userId))) return false;
      if (config.mode !== 'projects') return true;
      if (!projectId || !(await teamProjects()).some((p) => p.id === projectId)) return false;
      return await isMember(projectId, userId);
    },
  };
}
