// The provisioning worker as an Edge Function: the scheduler (pg_cron + pg_net on a
// hosted project, a timer in `npm start`) calls POST /provisioner/run; each run claims
// small batches and stops within its time budget. Machine callers only.
import { createRoute, z } from '@hono/zod-openapi';
import { needs } from '../../shared/auth/needs.ts';
import { connectorsFromEnv } from '../../shared/connectors/index.ts';
import { asService } from '../../shared/db.ts';
import { createApp } from '../../shared/http.ts';
import { commonErrors, jsonBody, jsonResponse } from '../../shared/schemas/common.ts';
import { runProvisioningWorker } from '../../shared/queue.ts';

export const app = createApp('provisioner', {
  title: 'Provisioner',
  description: "Runs the tenant provisioning queue: each tenant's accounts in Chatwoot, Botpress, n8n and Odoo.",
});

const security = [{ bearerAuth: [] }];

const RunBody = z
  .object({
    batch: z.number().int().min(1).max(50).default(5),
    budget_ms: z.number().int().min(100).max(140_000).default(100_000),
  })
  .strict();

const Report = z.object({
  worker: z.string(),
  claimed: z.number().int(),
  succeeded: z.number().int(),
  retried: z.number().int(),
  dead: z.number().int(),
  lost: z.number().int(),
  ms: z.number().int(),
});

app.openapi(
  createRoute({
    method: 'post',
    path: '/run',
    summary: 'Work the queue for up to budget_ms, in batches',
    security,
    middleware: needs.machine(),
    request: { body: { ...jsonBody(RunBody), required: false } },
    responses: {
      200: jsonResponse(Report, 'What this run did'),
      401: commonErrors[401],
      422: commonErrors[422],
    },
  }),
  async (c) => {
    const body = RunBody.parse(await c.req.json().catch(() => ({})));
    const report = await runProvisioningWorker({
      connectors: connectorsFromEnv(),
      batch: body.batch,
      budgetMs: body.budget_ms,
    });
    return c.json(report, 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/reconcile',
    summary: 'Re-queue services whose state drifted from the desired one',
    security,
    middleware: needs.machine(),
    responses: {
      200: jsonResponse(z.object({ queued: z.number().int() }), 'How many were queued'),
      401: commonErrors[401],
    },
  }),
  async (c) => {
    const queued = await asService(
      null,
      async (tx) => (await tx`select private.reconcile_tenant_services() as n`)[0].n as number,
    );
    return c.json({ queued }, 200);
  },
);
