// What each tenant defines for its tickets (issue 16 §4): custom fields, departments and
// tags. The database decides who reads and keeps which (their policies: customers read
// the departments and the fields visible to them, staff read everything, admins keep
// them), checks the values on every ticket write and moves a field's values when its
// visibility changes (20261202110200_custom_fields.sql); these routes shape the API.
import { createRoute, z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { needs } from '../../../shared/auth/needs.ts';
import type { Tx } from '../../../shared/db.ts';
import { notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Checked, Column, Selected } from '../../../shared/rows.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  errorResponse,
  jsonBody,
  jsonResponse,
  keysetPage,
} from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { security, type TicketsHandler } from './common.ts';

const FIELD_COLUMNS = [
  'id',
  'tenant_id',
  'key',
  'label',
  'type',
  'required',
  'visible_to_customers',
  'options',
  'position',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'custom_field_definitions'>[];
type FieldRow = Checked<
  Selected<'custom_field_definitions', typeof FIELD_COLUMNS>,
  { type: z.infer<typeof s.FieldTypeSchema> }
>;
const DEPARTMENT_COLUMNS = ['id', 'tenant_id', 'key', 'name', 'created_at', 'updated_at'] as const satisfies readonly Column<
  'departments'
>[];
type DepartmentRow = Selected<'departments', typeof DEPARTMENT_COLUMNS>;
const TAG_COLUMNS = [
  'id',
  'tenant_id',
  'name',
  'color',
  'description',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<
  'tags'
>[];
type TagRow = Selected<'tags', typeof TAG_COLUMNS>;

const admin = needs.activeTenantRole('admin', { write: true });
const removed = { 204: { description: 'Removed' } };

const routes = {
  listFields: createRoute({
    method: 'get',
    path: '/custom-fields',
    summary: "The tenant's custom ticket fields (customers: only those visible to them)",
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }),
    responses: {
      200: jsonResponse(z.object({ items: z.array(s.CustomFieldSchema) }), 'Fields by position, then key'),
      ...commonErrors,
    },
  }),
  createField: createRoute({
    method: 'post',
    path: '/custom-fields',
    summary: 'Define a custom ticket field (admins)',
    security,
    middleware: admin,
    request: { body: jsonBody(s.CustomFieldBody) },
    responses: { 201: jsonResponse(s.CustomFieldSchema, 'The field'), ...commonErrors, ...conflictError },
  }),
  getField: createRoute({
    method: 'get',
    path: '/custom-fields/{fieldId}',
    summary: 'One custom field',
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }),
    request: { params: s.FieldIdParam },
    responses: { 200: jsonResponse(s.CustomFieldSchema, 'The field'), ...commonErrors },
  }),
  updateField: createRoute({
    method: 'patch',
    path: '/custom-fields/{fieldId}',
    summary: "Change a field's label, options, position, whether it is required or visible to customers (admins)",
    security,
    middleware: admin,
    request: { params: s.FieldIdParam, body: jsonBody(s.UpdateCustomFieldBody) },
    responses: { 200: jsonResponse(s.CustomFieldSchema, 'The field'), ...commonErrors },
  }),
  removeField: createRoute({
    method: 'delete',
    path: '/custom-fields/{fieldId}',
    summary: 'Remove a custom field and its values on every ticket (admins)',
    security,
    middleware: admin,
    request: { params: s.FieldIdParam },
    responses: {
      ...removed,
      ...commonErrors,
      409: errorResponse('`custom_field_in_use`: automation rules set it (`details.automation_rules`); change them first'),
    },
  }),
  listDepartments: createRoute({
    method: 'get',
    path: '/departments',
    summary: "The tenant's departments (a ticket's and a team's `department` is one of their keys)",
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }),
    responses: {
      200: jsonResponse(z.object({ items: z.array(s.DepartmentRecordSchema) }), 'Departments by key'),
      ...commonErrors,
    },
  }),
  createDepartment: createRoute({
    method: 'post',
    path: '/departments',
    summary: 'Add a department (admins)',
    security,
    middleware: admin,
    request: { body: jsonBody(s.DepartmentBody) },
    responses: { 201: jsonResponse(s.DepartmentRecordSchema, 'The department'), ...commonErrors, ...conflictError },
  }),
  updateDepartment: createRoute({
    method: 'patch',
    path: '/departments/{departmentId}',
    summary: 'Rename a department (admins); its key stays',
    security,
    middleware: admin,
    request: { params: s.DepartmentIdParam, body: jsonBody(s.UpdateDepartmentBody) },
    responses: { 200: jsonResponse(s.DepartmentRecordSchema, 'The department'), ...commonErrors },
  }),
  removeDepartment: createRoute({
    method: 'delete',
    path: '/departments/{departmentId}',
    summary: 'Remove a department no ticket or team names (admins; otherwise 409 still_referenced)',
    security,
    middleware: admin,
    request: { params: s.DepartmentIdParam },
    responses: { ...removed, ...commonErrors, ...conflictError },
  }),
  listTags: createRoute({
    method: 'get',
    path: '/tags',
    summary: "The tenant's tags with their colours (staff); a tag put on a ticket is registered by itself",
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('agent', { scope: 'tickets:read' }),
    request: { query: s.ListTagsQuery },
    responses: {
      200: jsonResponse(z.object({ items: z.array(s.TagSchema), next: z.string().nullable() }), 'A page of tags, by name'),
      ...commonErrors,
    },
  }),
  createTag: createRoute({
    method: 'post',
    path: '/tags',
    summary: 'Register a tag with a colour (admins)',
    security,
    middleware: admin,
    request: { body: jsonBody(s.TagBody) },
    responses: { 201: jsonResponse(s.TagSchema, 'The tag'), ...commonErrors, ...conflictError },
  }),
  updateTag: createRoute({
    method: 'patch',
    path: '/tags/{tagId}',
    summary: "Change a tag's colour or description (admins); names never change",
    security,
    middleware: admin,
    request: { params: s.TagIdParam, body: jsonBody(s.UpdateTagBody) },
    responses: { 200: jsonResponse(s.TagSchema, 'The tag'), ...commonErrors },
  }),
  removeTag: createRoute({
    method: 'delete',
    path: '/tags/{tagId}',
    summary: 'Remove a tag no ticket carries (admins; otherwise 409 tag_in_use)',
    security,
    middleware: admin,
    request: { params: s.TagIdParam },
    responses: { ...removed, ...commonErrors, ...conflictError },
  }),
};

/** One row the caller can see, or 404. */
async function one<T>(rows: Promise<readonly T[]>, what: string): Promise<T> {
  const [r] = await rows;
  if (!r) throw notFound(what);
  return r;
}

// ---------------------------------------------------------------- custom fields

const fieldById = (tx: Tx, tenantId: string, id: string) =>
  tx<FieldRow>`select ${tx.columns(FIELD_COLUMNS)} from public.custom_field_definitions
               where tenant_id = ${tenantId} and id = ${id}`;

const listFields: TicketsHandler<typeof routes.listFields> = async (c) => {
  const access = c.var.access;
  const items = await callerDb(
    c,
    access.tenantId,
    (tx) =>
      tx<FieldRow>`select ${tx.columns(FIELD_COLUMNS)} from public.custom_field_definitions
                 where tenant_id = ${access.tenantId} order by position, key`,
  );
  return c.json({ items }, 200);
};

const createField: TicketsHandler<typeof routes.createField> = async (c) => {
  const b = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, (tx) =>
    one(
      tx<FieldRow>`
        insert into public.custom_field_definitions (tenant_id, key, label, type, required, visible_to_customers, options, position)
        values (${access.tenantId}, ${b.key}, ${b.label}, ${b.type}, ${b.required}, ${b.visible_to_customers},
                ${b.options}::text[], ${b.position})
        returning ${tx.columns(FIELD_COLUMNS)}`,
      'Custom field',
    ));
  return c.json(row, 201);
};

const getField: TicketsHandler<typeof routes.getField> = async (c) => {
  const { fieldId } = c.req.valid('param');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, (tx) => one(fieldById(tx, access.tenantId, fieldId), 'Custom field'));
  return c.json(row, 200);
};

const updateField: TicketsHandler<typeof routes.updateField> = async (c) => {
  const { fieldId } = c.req.valid('param');
  const b = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, async (tx) => {
    await one(fieldById(tx, access.tenantId, fieldId), 'Custom field');
    // Options of a field that takes none, or none for one that needs them: the check
    // constraint's 422.
    return await one(
      tx<FieldRow>`
        update public.custom_field_definitions set
          label = coalesce(${b.label ?? null}::text, label),
          required = coalesce(${b.required ?? null}::boolean, required),
          visible_to_customers = coalesce(${b.visible_to_customers ?? null}::boolean, visible_to_customers),
          options = coalesce(${b.options ?? null}::text[], options),
          position = coalesce(${b.position ?? null}::integer, position)
        where tenant_id = ${access.tenantId} and id = ${fieldId}
        returning ${tx.columns(FIELD_COLUMNS)}`,
      'Custom field',
    );
  });
  return c.json(row, 200);
};

const removeField: TicketsHandler<typeof routes.removeField> = async (c) => {
  const { fieldId } = c.req.valid('param');
  const access = c.var.access;
  await callerDb(c, access.tenantId, (tx) =>
    one(
      tx`delete from public.custom_field_definitions where tenant_id = ${access.tenantId} and id = ${fieldId} returning id`,
      'Custom field',
    ));
  return c.body(null, 204);
};

// ---------------------------------------------------------------- departments

const listDepartments: TicketsHandler<typeof routes.listDepartments> = async (c) => {
  const access = c.var.access;
  const items = await callerDb(
    c,
    access.tenantId,
    (tx) =>
      tx<DepartmentRow>`select ${tx.columns(DEPARTMENT_COLUMNS)} from public.departments
                      where tenant_id = ${access.tenantId} order by key`,
  );
  return c.json({ items }, 200);
};

const createDepartment: TicketsHandler<typeof routes.createDepartment> = async (c) => {
  const b = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, (tx) =>
    one(
      tx<DepartmentRow>`insert into public.departments (tenant_id, key, name) values (${access.tenantId}, ${b.key}, ${b.name})
                        returning ${tx.columns(DEPARTMENT_COLUMNS)}`,
      'Department',
    ));
  return c.json(row, 201);
};

const updateDepartment: TicketsHandler<typeof routes.updateDepartment> = async (c) => {
  const { departmentId } = c.req.valid('param');
  const b = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, (tx) =>
    one(
      tx<DepartmentRow>`update public.departments set name = ${b.name}
                        where tenant_id = ${access.tenantId} and id = ${departmentId}
                        returning ${tx.columns(DEPARTMENT_COLUMNS)}`,
      'Department',
    ));
  return c.json(row, 200);
};

const removeDepartment: TicketsHandler<typeof routes.removeDepartment> = async (c) => {
  const { departmentId } = c.req.valid('param');
  const access = c.var.access;
  // Still named by a ticket or team: the foreign key's 409 still_referenced.
  await callerDb(c, access.tenantId, (tx) =>
    one(
      tx`delete from public.departments where tenant_id = ${access.tenantId} and id = ${departmentId} returning id`,
      'Department',
    ));
  return c.body(null, 204);
};

// ---------------------------------------------------------------- tags

const listTags: TicketsHandler<typeof routes.listTags> = async (c) => {
  const access = c.var.access;
  const q = c.req.valid('query');
  const after = cursorValues(q.cursor, 1);
  const rows = await callerDb(
    c,
    access.tenantId,
    (tx) =>
      tx<TagRow>`select ${tx.columns(TAG_COLUMNS)} from public.tags
        where tenant_id = ${access.tenantId} and (${after?.[0] ?? null}::text is null or name > ${after?.[0] ?? null}::text)
        order by name limit ${q.limit + 1}`,
  );
  return c.json(keysetPage(rows, q.limit, (t) => [t.name]), 200);
};

const createTag: TicketsHandler<typeof routes.createTag> = async (c) => {
  const b = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, (tx) =>
    one(
      tx<TagRow>`insert into public.tags (tenant_id, name, color, description)
                 values (${access.tenantId}, ${b.name}, ${b.color}, ${b.description})
                 returning ${tx.columns(TAG_COLUMNS)}`,
      'Tag',
    ));
  return c.json(row, 201);
};

const updateTag: TicketsHandler<typeof routes.updateTag> = async (c) => {
  const { tagId } = c.req.valid('param');
  const b = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, (tx) =>
    one(
      tx<TagRow>`update public.tags set
                   color = case when ${'color' in b} then ${b.color ?? null}::text else color end,
                   description = case when ${'description' in b} then ${b.description ?? null}::text else description end
                 where tenant_id = ${access.tenantId} and id = ${tagId}
                 returning ${tx.columns(TAG_COLUMNS)}`,
      'Tag',
    ));
  return c.json(row, 200);
};

const removeTag: TicketsHandler<typeof routes.removeTag> = async (c) => {
  const { tagId } = c.req.valid('param');
  const access = c.var.access;
  // Still on a ticket: the guard trigger's 409 tag_in_use.
  await callerDb(
    c,
    access.tenantId,
    (tx) => one(tx`delete from public.tags where tenant_id = ${access.tenantId} and id = ${tagId} returning id`, 'Tag'),
  );
  return c.body(null, 204);
};

export const fields = createRouter()
  .openapi(routes.listFields, listFields)
  .openapi(routes.createField, createField)
  .openapi(routes.getField, getField)
  .openapi(routes.updateField, updateField)
  .openapi(routes.removeField, removeField)
  .openapi(routes.listDepartments, listDepartments)
  .openapi(routes.createDepartment, createDepartment)
  .openapi(routes.updateDepartment, updateDepartment)
  .openapi(routes.removeDepartment, removeDepartment)
  .openapi(routes.listTags, listTags)
  .openapi(routes.createTag, createTag)
  .openapi(routes.updateTag, updateTag)
  .openapi(routes.removeTag, removeTag);
