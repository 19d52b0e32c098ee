// The one job runner as an Edge Function: the scheduler (pg_cron + pg_net every 10 s on
// a hosted project, a timer in `npm start`) calls POST /jobs/run with the service
// credential; each run adds the recurring jobs that are due, then runs due jobs of
// every task (shared/jobs/registry.ts), up to `batch` at once, and stops when the queue is
// empty or its time budget is spent. Machine callers only.
import { createRoute, z } from '@hono/zod-openapi';
import { needs } from '../../shared/auth/needs.ts';
import { db } from '../../shared/db.ts';
import { createApp } from '../../shared/http.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { commonErrors, jsonBody, jsonResponse, unavailableError } from '../../shared/schemas/common.ts';
import { machineErrors, security } from '../../shared/schemas/security.ts';

export const app = createApp('jobs', {
  title: 'Jobs',
  description:
    'Runs the job queue: provisioning, webhook deliveries, Chatwoot replies, the SLA sweep, the reconcile pass and pruning.',
});

const RunBody = z
  .object({
    batch: z.number().int().min(1).max(50).default(10),
    budget_ms: z.number().int().min(100).max(140_000).default(25_000),
  })
  .strict();

const Counts = z.object({
  claimed: z.number().int(),
  completed: z.number().int(),
  retried: z.number().int(),
  dead: z.number().int(),
  lost: z.number().int(),
  /** Put back untried, their attempt uncounted (a webhook endpoint's open breaker). */
  deferred: z.number().int(),
  /** Failed after a newer job took their key: ended, the newer job to run in their place. */
  superseded: z.number().int(),
}).catchall(z.number());

const Report = z.object({
  worker: z.string(),
  scheduled: z.number().int(),
  claimed: z.number().int(),
  completed: z.number().int(),
  retried: z.number().int(),
  dead: z.number().int(),
  lost: z.number().int(),
  deferred: z.number().int(),
  superseded: z.number().int(),
  released: z.number().int(),
  ms: z.number().int(),
  tasks: z.record(z.string(), Counts),
});

app.openapi(
  createRoute({
    method: 'post',
    path: '/run',
    summary: 'Run due jobs of every task for up to budget_ms, up to batch at once (the scheduler)',
    security: security.machine,
    middleware: needs.machine(),
    request: { body: { ...jsonBody(RunBody), required: false } },
    responses: {
      200: jsonResponse(Report, 'What this run did, in all and per task'),
      ...machineErrors,
      422: commonErrors[422],
      ...unavailableError,
    },
  }),
  async (c) => {
    const body = RunBody.parse(await c.req.json().catch(() => ({})));
    return c.json(await runJobs({ batch: body.batch, budgetMs: body.budget_ms }), 200);
  },
);

const TaskMetrics = z.object({
  due: z.number().int(),
  queued_behind: z.number().int(),
  scheduled: z.number().int(),
  running: z.number().int(),
  retrying: z.number().int(),
  dead: z.number().int(),
  dead_last_24h: z.number().int(),
  oldest_due_age_seconds: z.number().nullable(),
});
const Metrics = z
  .object({
    measured_at: z.string().openapi({ format: 'date-time' }),
    due: z.number().int().openapi({ description: 'Jobs whose time has come, not running, each the head of its queue (if any)' }),
    queued_behind: z.number().int().openapi({
      description: 'Live jobs waiting for the head of their named queue (a conversation, a ticket): not due whatever their time',
    }),
    scheduled: z.number().int().openapi({ description: 'Jobs for later (retries waiting out their backoff included)' }),
    running: z.number().int().openapi({ description: 'Jobs under a live lease' }),
    retrying: z.number().int().openapi({ description: 'Live jobs that have failed at least once' }),
    dead: z.number().int().openapi({ description: 'Jobs given up on (kept 30 days)' }),
    oldest_due_age_seconds: z.number().nullable().openapi({
      description: 'How long the oldest due job has waited: the runner is behind when this grows',
    }),
    tasks: z.record(z.string(), TaskMetrics),
  })
  .openapi('JobMetrics');

app.openapi(
  createRoute({
    method: 'get',
    path: '/metrics',
    summary: 'Queue depth, the oldest due job and failures, per task (monitoring)',
    security: security.machine,
    middleware: needs.machine(),
    responses: { 200: jsonResponse(Metrics, 'The queue now'), ...machineErrors, ...unavailableError },
  }),
  async (c) => {
    const [row] = await db()<{ metrics: z.infer<typeof Metrics> }>`select private.job_metrics() as metrics`;
    return c.json(row.metrics, 200);
  },
);
