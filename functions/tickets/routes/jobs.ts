// The tickets API's scheduled work, for the platform scheduler (machine credential).
import { createRoute, z } from '@hono/zod-openapi';
import { needs } from '../../../shared/auth/needs.ts';
import { asService } from '../../../shared/db.ts';
import { createRouter } from '../../../shared/http.ts';
import { commonErrors, jsonResponse } from '../../../shared/schemas/common.ts';
import { security } from './common.ts';

const slaSweep = createRoute({
  method: 'post',
  path: '/jobs/sla-sweep',
  summary: 'Mark SLA breaches, escalate and note them (the scheduler, with the service credential)',
  security,
  middleware: needs.machine(),
  responses: {
    200: jsonResponse(z.object({ breaches: z.number().int() }), 'Breaches marked'),
    401: commonErrors[401],
  },
});

export const jobs = createRouter().openapi(slaSweep, async (c) => {
  const breaches = await asService(
    null,
    async (tx) => (await tx<{ n: number }>`select private.run_sla_sweep() as n`)[0].n,
  );
  return c.json({ breaches }, 200);
});
