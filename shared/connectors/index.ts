// The connectors this deployment is configured for, from the environment. A service
// whose partner is not configured fails its jobs permanently with a clear message.
import { env, envInt, envList } from '../env.ts';
import { chatwootInboundUrl } from '../webhooks/chatwoot.ts';
import { botpressConnector } from './botpress.ts';
import { chatwootConnector } from './chatwoot.ts';
import { n8nConnector } from './n8n.ts';
import { odooConnector } from './odoo.ts';
import type { Connector, ServiceName } from './types.ts';

export type Connectors = Partial<Record<ServiceName, Connector>>;

export function connectorsFromEnv(): Connectors {
  const timeoutMs = envInt('PARTNER_TIMEOUT_MS', 10_000, 1, 600_000);
  const connectors: Connectors = {};
  if (env('CHATWOOT_URL') && env('CHATWOOT_PLATFORM_TOKEN')) {
    connectors.chatwoot = chatwootConnector({
      url: env('CHATWOOT_URL')!,
      platformToken: env('CHATWOOT_PLATFORM_TOKEN')!,
      timeoutMs,
      // The account webhook that brings conversations in (CHATWOOT_WEBHOOKS=false: none).
      inboundUrl: env('CHATWOOT_WEBHOOKS') === 'false' ? undefined : chatwootInboundUrl,
    });
  }
  if (env('BOTPRESS_TOKEN') && env('BOTPRESS_WORKSPACE_ID')) {
    connectors.botpress = botpressConnector({
      url: env('BOTPRESS_URL'),
      token: env('BOTPRESS_TOKEN')!,
      workspaceId: env('BOTPRESS_WORKSPACE_ID')!,
      deleteOnSuspend: env('BOTPRESS_DELETE_ON_SUSPEND') === 'true',
      timeoutMs,
    });
  }
  if (env('N8N_URL') && env('N8N_API_KEY')) {
    connectors.n8n = n8nConnector({
      url: env('N8N_URL')!,
      apiKey: env('N8N_API_KEY')!,
      mode: env('N8N_MODE') === 'projects' ? 'projects' : 'shared',
      timeoutMs,
    });
  }
  if (env('ODOO_URL') && env('ODOO_DB') && env('ODOO_LOGIN') && env('ODOO_API_KEY')) {
    connectors.odoo = odooConnector({
      url: env('ODOO_URL')!,
      db: env('ODOO_DB')!,
      login: env('ODOO_LOGIN')!,
      key: env('ODOO_API_KEY')!,
      transport: env('ODOO_TRANSPORT') === 'json2' ? 'json2' : 'jsonrpc',
      mode: env('ODOO_MODE') === 'database' ? 'database' : 'company',
      masterPassword: env('ODOO_MASTER_PASSWORD'),
      timeoutMs,
      // create_database blocks while Odoo builds the database: its own timeout (the job's
      // lease is renewed while it waits); the database counts only once it is usable.
      createDatabaseTimeoutMs: envInt('ODOO_CREATE_DB_TIMEOUT_MS', 90_000, 1_000, 600_000),
      adminGroups: envList('ODOO_ADMIN_GROUPS').length ? envList('ODOO_ADMIN_GROUPS') : undefined,
    });
  }
  return connectors;
}
