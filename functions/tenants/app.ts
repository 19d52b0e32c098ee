// The tenants API: tenants (super-admins create and run them, admins edit their own),
// members, teams, the audit trail, and GET /me. Every query runs as the caller under
// RLS (callerDb); the role each route declares (shared/auth/needs.ts) gives clear
// 403/404s, the policies enforce them.
import type { AuthEnv } from '../../shared/auth/context.ts';
import { createApp } from '../../shared/http.ts';
import { registerMe } from './routes/me.ts';
import { registerTenants } from './routes/tenants.ts';
import { registerMembers } from './routes/members.ts';
import { registerInvitations } from './routes/invitations.ts';
import { registerTeams } from './routes/teams.ts';
import { registerServices } from './routes/services.ts';
import { registerWebhooks } from './routes/webhooks.ts';
import { registerAudit } from './routes/audit.ts';
import { registerPlanCatalogue, registerPlans } from './routes/plans.ts';
import { registerApiKeys } from './routes/api-keys.ts';
export const app = createApp<AuthEnv>('tenants', {
  title: 'Tenants API',
  description: 'Tenants, members, teams and audit trail of the multi-tenant platform.',
});

// Registration order matters where paths overlap: /me before /{tenantId}.
registerMe(app);
registerPlanCatalogue(app);
registerTenants(app);
registerMembers(app);
registerInvitations(app);
registerTeams(app);
registerServices(app);
registerWebhooks(app);
registerAudit(app);
registerPlans(app);
registerApiKeys(app);
