// A ticket's life end to end: the Deno functions server as `npm start` runs it, driven
// by supabase-js functions.invoke, with the attachment bytes going through the local
// storage's signed URLs over HTTP.
import { createClient, FunctionsHttpError } from '@supabase/supabase-js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { apiKey } from '../../scripts/tokens.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let server: FunctionsServer;
let storageDir: string;
let anonKey: string;

beforeAll(async () => {
  db = await freshDatabase('e2e_tickets');
  auth = await configureAuth(db.url);
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'e2e-storage-'));
  anonKey = await apiKey('anon', TEST_JWT_SECRET);
  server = await startFunctionsServer({ SUPABASE_ANON_KEY: anonKey, LOCAL_STORAGE_DIR: storageDir, STORAGE_BACKEND: 'local' });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await auth?.close();
  await db?.close();
  await rm(storageDir, { recursive: true, force: true });
});

const client = (token: string) =>
  createClient(server.url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket as never },
    global: { headers: { Authorization: `Bearer ${token}` } },
  });

it('a ticket from report to closure', async () => {
  const customer = client(await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id }));
  const agent = client(await supabaseToken(users.acmeAgent, { tenantId: tenants.acme.id }));

  // The customer reports, twice by accident: the Idempotency-Key makes it one ticket.
  const report = { title: 'VPN drops every hour', description: 'Since Monday', priority: 'high' };
  const first = await customer.functions.invoke('tickets', { body: report, headers: { 'Idempotency-Key': 'report-1' } });
  const retry = await customer.functions.invoke('tickets', { body: report, headers: { 'Idempotency-Key': 'report-1' } });
  expect(first.error).toBeNull();
  expect(retry.data).toEqual(first.data);
  const ticket = first.data;
  expect(ticket).toMatchObject({ status: 'open', number: 1, created_by: users.acmeUser.id });

  // A screenshot, through the signed upload URL, over HTTP.
  const png = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 1, 2, 3]);
  const att = await customer.functions.invoke(`tickets/${ticket.id}/attachments`, {
    body: { file_name: 'screenshot.png', content_type: 'image/png', size_bytes: png.length },
  });
  expect(att.error).toBeNull();
  const put = await fetch(att.data.upload.url, { method: 'PUT', headers: att.data.upload.headers, body: png });
  expect(put.status).toBe(200);

  // Routing puts it in front of the support team's agent.
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${ticket.id}`;
  const queue = await agent.functions.invoke('tickets?status=open&sort=priority', { method: 'GET' });
  expect(queue.data.items.map((t: { id: string }) => t.id)).toContain(ticket.id);

  // The agent takes it, notes internally, asks the customer, and waits.
  await agent.functions.invoke(`tickets/${ticket.id}/assignee`, { method: 'PUT', body: { user_id: users.acmeAgent.id } });
  await agent.functions.invoke(`tickets/${ticket.id}/messages`, { body: { type: 'note', content: 'Known issue with the old client' } });
  await agent.functions.invoke(`tickets/${ticket.id}/messages`, { body: { content: 'Which client version do you run?' } });
  await agent.functions.invoke(`tickets/${ticket.id}/status`, { body: { status: 'pending' } });

  // The customer answers (the ticket goes back to open) and downloads their screenshot.
  await customer.functions.invoke(`tickets/${ticket.id}/messages`, { body: { content: 'Version 2.1' } });
  const mine = await customer.functions.invoke(`tickets/${ticket.id}`, { method: 'GET' });
  expect(mine.data.status).toBe('open');
  expect(mine.data.first_response_at).toEqual(expect.any(String));
  expect(mine.data.messages.map((m: { content: string }) => m.content)).toEqual(['Which client version do you run?', 'Version 2.1']);
  const shot = await customer.functions.invoke(`tickets/${ticket.id}/attachments/${att.data.attachment.id}`, { method: 'GET' });
  expect(shot.data.attachment.status).toBe('uploaded');
  expect(new Uint8Array(await (await fetch(shot.data.download.url)).arrayBuffer())).toEqual(png);

  // Resolved, then closed; a bad transition is a 409 that lists the allowed ones.
  await agent.functions.invoke(`tickets/${ticket.id}/status`, { body: { status: 'resolved' } });
  const wrong = await agent.functions.invoke(`tickets/${ticket.id}/status`, { body: { status: 'pending' } });
  expect(wrong.error).toBeInstanceOf(FunctionsHttpError);
  const body = await ((wrong.error as FunctionsHttpError).context as Response).json();
  expect(body.error).toMatchObject({ code: 'invalid_transition', details: { allowed: ['closed', 'open'] } });
  const closed = await agent.functions.invoke(`tickets/${ticket.id}/status`, { body: { status: 'closed' } });
  expect(closed.data).toMatchObject({ status: 'closed', closed_at: expect.any(String), resolved_at: expect.any(String) });

  const timeline = (await agent.functions.invoke(`tickets/${ticket.id}`, { method: 'GET' })).data.timeline.map((e: { type: string }) => e.type);
  expect(timeline).toEqual(['created', 'team_changed', 'assigned', 'status_changed', 'status_changed', 'status_changed', 'status_changed']);

  const stats = await agent.functions.invoke('tickets/stats', { method: 'GET' });
  expect(stats.data).toMatchObject({ total: 1, by_status: { closed: 1 }, by_priority: { high: 1 } });

  // Another tenant's staff cannot find it.
  const outsider = client(await supabaseToken(users.globexAgent, { tenantId: tenants.globex.id }));
  const peek = await outsider.functions.invoke(`tickets/${ticket.id}`, { method: 'GET' });
  expect(((peek.error as FunctionsHttpError).context as Response).status).toBe(404);
});
