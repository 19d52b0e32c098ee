// The tenant's callers: staff read them, agents manage them (the policies decide); a
// customer (role user) reads the record linked to them, without staff's notes and tags.
// Phone numbers are E.164 and unique per tenant (a duplicate is 409 already_exists
// naming phone); consent times are the database's. Deleting a customer
// keeps their calls; erasing one (admins, private.voice_customer_erase) removes the calls,
// transcripts and recordings too, and queues the job that erases their audit images.
import { createRoute, type z } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import { commonErrors, conflictError, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import { security } from '../../../shared/schemas/security.ts';
import * as s from '../schemas.ts';
import { after, CUSTOMER_COLUMNS, type CustomerRow, page, readableColumns, readableRows, type VoiceHandler } from './common.ts';

const routes = {
  list: createRoute({
    method: 'get',
    path: '/customers',
    summary: "The tenant's customers, newest first (keyset pages), or the one with a phone number",
    ...apiKeyScope('customers:read'),
    // No feature, here and on a customer's read: a tenant whose plan lost voice still
    // corrects and erases its customers, and must find them to do so.
    middleware: needs.activeTenantRole('user', { scope: 'customers:read' }),
    request: { query: s.CustomerListQuery },
    responses: { 200: jsonResponse(s.CustomerPageSchema, 'A page of customers'), ...commonErrors },
  }),
  create: createRoute({
    method: 'post',
    path: '/customers',
    summary: 'Add a customer (agents)',
    ...apiKeyScope('customers:write'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'customers:write', feature: 'voice' }),
    request: { body: jsonBody(s.CreateCustomerBody) },
    responses: { 201: jsonResponse(s.CustomerSchema, 'The customer'), ...commonErrors, ...conflictError },
  }),
  read: createRoute({
    method: 'get',
    path: '/customers/{id}',
    summary: 'A customer',
    ...apiKeyScope('customers:read'),
    middleware: needs.activeTenantRole('user', { scope: 'customers:read' }),
    request: { params: s.IdParam },
    responses: { 200: jsonResponse(s.CustomerSchema, 'The customer'), ...commonErrors },
  }),
  update: createRoute({
    method: 'patch',
    path: '/customers/{id}',
    summary: 'Change a customer (agents): contact details, notes, tags, consents',
    ...apiKeyScope('customers:write'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'customers:write' }),
    request: { params: s.IdParam, body: jsonBody(s.UpdateCustomerBody) },
    responses: { 200: jsonResponse(s.CustomerSchema, 'The customer'), ...commonErrors, ...conflictError },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/customers/{id}',
    summary: 'Delete a customer (agents); their calls stay, without a customer (erase them with POST /customers/{id}/erasure)',
    ...apiKeyScope('customers:write'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'customers:write' }),
    request: { params: s.IdParam },
    responses: { 204: { description: 'Deleted' }, ...commonErrors },
  }),
  erase: createRoute({
    method: 'post',
    path: '/customers/{id}/erasure',
    summary:
      'Erase a customer (admins): the record, their calls with transcripts and recordings, and their images in the audit trail',
    description: "For a caller's right to erasure. In the request's transaction: the customer; their calls (linked, or " +
      'unlinked with their number as the caller of an inbound call or the callee of an outbound one), transcripts and ' +
      'recordings in storage (deleted by jobs); held provider events; outbound webhook events about them, sent or not. ' +
      'Then a job erases the row images of their audit entries (and of their calls and records deleted before), the ' +
      'entries staying with `redacted_at`. Receivers get `customer.erased` at once and `customer.erasure_completed` ' +
      'when the trail is done. Tickets opened from the calls are kept and ' +
      'listed. Allowed while the tenant is suspended, or its plan lacks voice; not with an API key (people only). ' +
      '409 `calls_in_progress` while one of the calls has not ended.',
    // People only, no API key scope: a key that syncs customers must not be able to erase them.
    security: security.user,
    middleware: needs.activeTenantRole('admin'),
    request: { params: s.IdParam },
    responses: { 200: jsonResponse(s.CustomerErasureSchema, 'What was erased'), ...commonErrors, ...conflictError },
  }),
};

const list: VoiceHandler<typeof routes.list> = async (c) => {
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const rows = await callerDb(c, tenantId, (tx) =>
    tx<CustomerRow & { sort_key: string }>`
      select ${readableColumns(tx, 'voice_customers', c.var.access.staff)}, created_at::text as sort_key
      from ${readableRows(tx, 'voice_customers', tenantId, c.var.access.staff)}
      where tenant_id = ${tenantId}
        and ${q.phone ? tx`phone = ${q.phone}` : tx`true`}
        and ${after(tx, q.cursor, tx`created_at`, 'timestamptz', true)}
      order by created_at desc, id desc limit ${q.limit + 1}`);
  return c.json(page(rows, q.limit), 200);
};

const create: VoiceHandler<typeof routes.create> = async (c) => {
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const [customer] = await callerDb(c, tenantId, (tx) =>
    tx<CustomerRow>`
      insert into public.voice_customers (tenant_id, phone, name, email, notes, tags, user_id, recording_consent, marketing_consent)
      values (${tenantId}, ${b.phone}, ${b.name ?? null}, ${b.email ?? null}, ${b.notes ?? null}, ${b.tags}, ${b.user_id ?? null},
              ${b.recording_consent}, ${b.marketing_consent})
      returning ${tx.columns(CUSTOMER_COLUMNS)}`);
  return c.json(customer, 201);
};

const read: VoiceHandler<typeof routes.read> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const [customer] = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx<CustomerRow>`select ${readableColumns(tx, 'voice_customers', c.var.access.staff)}
        from ${readableRows(tx, 'voice_customers', tenantId, c.var.access.staff)} where tenant_id = ${tenantId} and id = ${id}`,
  );
  if (!customer) throw notFound('Customer');
  return c.json(customer, 200);
};

const update: VoiceHandler<typeof routes.update> = async (c) => {
  const { id } = c.req.valid('param');
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const set = (field: string) => field in b;
  const [customer] = await callerDb(c, tenantId, (tx) =>
    tx<CustomerRow>`
      update public.voice_customers set
        phone = coalesce(${b.phone ?? null}::text, phone),
        name = case when ${set('name')} then ${b.name ?? null}::text else name end,
        email = case when ${set('email')} then ${b.email ?? null}::text else email end,
        notes = case when ${set('notes')} then ${b.notes ?? null}::text else notes end,
        tags = coalesce(${b.tags ?? null}::text[], tags),
        user_id = case when ${set('user_id')} then ${b.user_id ?? null}::uuid else user_id end,
        recording_consent = coalesce(${b.recording_consent ?? null}::boolean, recording_consent),
        marketing_consent = coalesce(${b.marketing_consent ?? null}::boolean, marketing_consent)
      where tenant_id = ${tenantId} and id = ${id}
      returning ${tx.columns(CUSTOMER_COLUMNS)}`);
  if (!customer) throw notFound('Customer');
  return c.json(customer, 200);
};

const remove: VoiceHandler<typeof routes.remove> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const deleted = await callerDb(
    c,
    tenantId,
    (tx) => tx`delete from public.voice_customers where tenant_id = ${tenantId} and id = ${id} returning id`,
  );
  if (!deleted.length) throw notFound('Customer');
  return c.body(null, 204);
};

const erase: VoiceHandler<typeof routes.erase> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const [{ erasure }] = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx<
        { erasure: z.infer<typeof s.CustomerErasureSchema> }
      >`select private.voice_customer_erase(${tenantId}, ${id}) as erasure`,
  );
  return c.json(erasure, 200);
};

export const customers = createRouter()
  .openapi(routes.list, list)
  .openapi(routes.create, create)
  .openapi(routes.read, read)
  .openapi(routes.update, update)
  .openapi(routes.remove, remove)
  .openapi(routes.erase, erase);
