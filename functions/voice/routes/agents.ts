// Voice agents and their knowledge base: every member reads them, admins manage them
// (the policies decide; the declared role makes the refusal a clear 403 first).
// Documents are chunked by the database as they are written; search runs
// private.kb_search, for people under RLS and for the provider's agent during a call.
import { createRoute } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { outsideTelephonyTenant } from '../../../shared/auth/service.ts';
import { callPathDb, type Sql, type Tx } from '../../../shared/db.ts';
import { isPgError, notFound, unprocessable } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Column, Selected } from '../../../shared/rows.ts';
import {
  bodyErrors,
  commonErrors,
  conflictError,
  errorResponse,
  jsonBody,
  jsonResponse,
  unavailableError,
} from '../../../shared/schemas/common.ts';
import { security as securityOf, telephonyErrors } from '../../../shared/schemas/security.ts';
import { byText, type Found, fusionDepth, type Hit, rankHits, type Ranking, type Searched } from '../knowledge-ranking.ts';
import * as s from '../schemas.ts';
import {
  after,
  AGENT_COLUMNS,
  type AgentReadRow,
  type AgentRow,
  page,
  readableColumns,
  readableRows,
  type VoiceHandler,
} from './common.ts';

const routes = {
  list: createRoute({
    method: 'get',
    path: '/agents',
    summary: "The tenant's voice agents, by name (keyset pages)",
    ...apiKeyScope('agents:read'),
    // No feature, here and on the reads of agents and knowledge bases and the list of
    // documents below: a tenant whose plan lost voice or knowledge_base still parks, edits
    // and removes what it has (which counts against its limits), and must find it to do
    // so. A document's content, like a call's transcript, stays the feature's.
    middleware: needs.activeTenantRole('user', { scope: 'agents:read' }),
    request: { query: s.AgentListQuery },
    responses: { 200: jsonResponse(s.AgentPageSchema, 'A page of agents'), ...commonErrors },
  }),
  create: createRoute({
    method: 'post',
    path: '/agents',
    summary:
      "Create a voice agent (admins); its number must not be held by another tenant's agent, even a parked one (409 already_exists naming phone)",
    ...apiKeyScope('agents:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'agents:write', feature: 'voice' }),
    request: { body: jsonBody(s.CreateAgentBody) },
    responses: { 201: jsonResponse(s.AgentSchema, 'The agent'), ...commonErrors, ...conflictError },
  }),
  read: createRoute({
    method: 'get',
    path: '/agents/{id}',
    summary: 'A voice agent',
    ...apiKeyScope('agents:read'),
    middleware: needs.activeTenantRole('user', { scope: 'agents:read' }),
    request: { params: s.IdParam },
    responses: { 200: jsonResponse(s.AgentReadSchema, 'The agent'), ...commonErrors },
  }),
  update: createRoute({
    method: 'patch',
    path: '/agents/{id}',
    summary: "Change a voice agent (admins): configuration, number, activation. Without the plan's voice feature an agent " +
      'may still be parked, renamed and edited; activating one, or moving one (active or parked) to a number the tenant ' +
      "does not hold yet, is 403 feature_not_in_plan. A number another tenant's agent uses, even a parked one, is 409 " +
      'already_exists naming phone',
    ...apiKeyScope('agents:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'agents:write' }),
    request: { params: s.IdParam, body: jsonBody(s.UpdateAgentBody) },
    responses: { 200: jsonResponse(s.AgentSchema, 'The agent'), ...commonErrors, ...conflictError },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/agents/{id}',
    summary: 'Delete a voice agent without calls (admins); one with calls is 409 still_referenced: deactivate it instead ' +
      '(PATCH active: false), its calls keep it',
    ...apiKeyScope('agents:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'agents:write' }),
    request: { params: s.IdParam },
    responses: { 204: { description: 'Deleted' }, ...commonErrors, ...conflictError },
  }),
  listKbs: createRoute({
    method: 'get',
    path: '/knowledge-bases',
    summary: "The tenant's knowledge bases, by name (keyset pages)",
    ...apiKeyScope('knowledge:read'),
    middleware: needs.activeTenantRole('user', { scope: 'knowledge:read' }),
    request: { query: s.KbListQuery },
    responses: { 200: jsonResponse(s.KnowledgeBasePageSchema, 'A page of knowledge bases'), ...commonErrors },
  }),
  readKb: createRoute({
    method: 'get',
    path: '/knowledge-bases/{kbId}',
    summary: 'A knowledge base',
    ...apiKeyScope('knowledge:read'),
    middleware: needs.activeTenantRole('user', { scope: 'knowledge:read' }),
    request: { params: s.KbParam },
    responses: { 200: jsonResponse(s.KnowledgeBaseSchema, 'The knowledge base'), ...commonErrors },
  }),
  updateKb: createRoute({
    method: 'patch',
    path: '/knowledge-bases/{kbId}',
    summary: 'Rename or describe a knowledge base (admins); allowed while the plan lacks knowledge_base',
    ...apiKeyScope('knowledge:write'),
    // No feature: a tenant that lost knowledge_base may still tidy up what it has (as it
    // may delete it); new knowledge is what the plan gates.
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'knowledge:write' }),
    request: { params: s.KbParam, body: jsonBody(s.UpdateKnowledgeBaseBody) },
    responses: { 200: jsonResponse(s.KnowledgeBaseSchema, 'The knowledge base'), ...commonErrors, ...conflictError },
  }),
  removeKb: createRoute({
    method: 'delete',
    path: '/knowledge-bases/{kbId}',
    summary: 'Delete a knowledge base with its documents and chunks (admins); its agents keep answering, without it',
    ...apiKeyScope('knowledge:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'knowledge:write' }),
    request: { params: s.KbParam },
    responses: { 204: { description: 'Deleted' }, ...commonErrors },
  }),
  createKb: createRoute({
    method: 'post',
    path: '/knowledge-bases',
    summary: 'Create a knowledge base (admins)',
    ...apiKeyScope('knowledge:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'knowledge:write', feature: 'knowledge_base' }),
    request: { body: jsonBody(s.CreateKnowledgeBaseBody) },
    responses: { 201: jsonResponse(s.KnowledgeBaseSchema, 'The knowledge base'), ...commonErrors, ...conflictError },
  }),
  listDocs: createRoute({
    method: 'get',
    path: '/knowledge-bases/{kbId}/documents',
    summary: 'The documents of a knowledge base, newest first, with their chunk counts (keyset pages)',
    ...apiKeyScope('knowledge:read'),
    middleware: needs.activeTenantRole('user', { scope: 'knowledge:read' }),
    request: { params: s.KbParam, query: s.KbListQuery },
    responses: { 200: jsonResponse(s.KbDocumentPageSchema, 'A page of documents'), ...commonErrors },
  }),
  readDoc: createRoute({
    method: 'get',
    path: '/knowledge-bases/{kbId}/documents/{id}',
    summary: 'A document with its content',
    ...apiKeyScope('knowledge:read'),
    middleware: needs.activeTenantRole('user', { scope: 'knowledge:read', feature: 'knowledge_base' }),
    request: { params: s.KbDocumentParam },
    responses: { 200: jsonResponse(s.KbDocumentDetailSchema, 'The document'), ...commonErrors },
  }),
  updateDoc: createRoute({
    method: 'patch',
    path: '/knowledge-bases/{kbId}/documents/{id}',
    summary: 'Change a document (admins); a new content replaces its chunks in the same transaction. New content ' +
      "needs the plan's knowledge_base feature (403 feature_not_in_plan); a new title or source does not",
    ...apiKeyScope('knowledge:write'),
    // The feature is the database's to check, for new content only
    // (require_feature_for_content, 20261202200100): through the table a tenant that lost
    // it may still retitle a document, and the API now says the same.
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'knowledge:write' }),
    request: { params: s.KbDocumentParam, body: jsonBody(s.UpdateKbDocumentBody) },
    responses: { 200: jsonResponse(s.KbDocumentSchema, 'The document'), ...commonErrors },
  }),
  addDoc: createRoute({
    method: 'post',
    path: '/knowledge-bases/{kbId}/documents',
    summary: 'Upload a text or Markdown document (admins); the database splits it into searchable chunks',
    ...apiKeyScope('knowledge:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'knowledge:write', feature: 'knowledge_base' }),
    request: { params: s.KbParam, body: jsonBody(s.CreateKbDocumentBody) },
    responses: { 201: jsonResponse(s.KbDocumentSchema, 'The document'), ...commonErrors },
  }),
  removeDoc: createRoute({
    method: 'delete',
    path: '/knowledge-bases/{kbId}/documents/{id}',
    summary: 'Delete a document and its chunks (admins)',
    ...apiKeyScope('knowledge:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'knowledge:write' }),
    request: { params: s.KbDocumentParam },
    responses: { 204: { description: 'Deleted' }, ...commonErrors },
  }),
  search: createRoute({
    method: 'get',
    path: '/knowledge-bases/search',
    summary: "The best chunks of the tenant's knowledge for a query (full text, in two configurations)",
    ...apiKeyScope('knowledge:read'),
    middleware: needs.activeTenantRole('user', { scope: 'knowledge:read', feature: 'knowledge_base' }),
    request: { query: s.KbSearchQuery },
    responses: { 200: jsonResponse(s.KbTextHitsSchema, 'The best chunks, best first'), ...commonErrors },
  }),
  searchByEmbedding: createRoute({
    method: 'post',
    path: '/knowledge-bases/search',
    summary: "The best chunks of the tenant's knowledge for a query and, optionally, its embedding: where the project " +
      'has vector search and chunks have embeddings, by both fused (`ranking: hybrid`, the default) or by the ' +
      'embedding, else by the text (`mode` says which)',
    ...apiKeyScope('knowledge:read'),
    middleware: needs.activeTenantRole('user', { scope: 'knowledge:read', feature: 'knowledge_base' }),
    request: { body: jsonBody(s.KbSearchBody) },
    responses: { 200: jsonResponse(s.KbHitsSchema, 'The best chunks, best first'), ...commonErrors, ...bodyErrors },
  }),
  listChunks: createRoute({
    method: 'get',
    path: '/knowledge-bases/{kbId}/documents/{id}/chunks',
    summary: "A document's chunks in order, with whether each has its embedding: what an embedding job reads " +
      '(pages by ordinal; `embedded=false` for the ones still to compute)',
    ...apiKeyScope('knowledge:read'),
    middleware: needs.activeTenantRole('user', { scope: 'knowledge:read', feature: 'knowledge_base' }),
    request: { params: s.KbDocumentParam, query: s.KbChunksQuery },
    responses: { 200: jsonResponse(s.KbChunkPageSchema, 'A page of chunks'), ...commonErrors },
  }),
  setEmbeddings: createRoute({
    method: 'put',
    path: '/knowledge-bases/{kbId}/documents/{id}/embeddings',
    summary: "Write (or clear, with null) the embeddings of a document's chunks (admins), all or nothing, up to 100 " +
      'per request within the body limit. 409 vector_search_unavailable where the project has no vector search; ' +
      "409 chunks_changed naming the ids that are not the document's chunks (its content changed since they were " +
      'read: its new chunks need their own); 422 naming the item whose embedding has the wrong size or no direction',
    ...apiKeyScope('knowledge:write'),
    middleware: needs.activeTenantRole('admin', { write: true, scope: 'knowledge:write', feature: 'knowledge_base' }),
    request: { params: s.KbDocumentParam, body: jsonBody(s.SetEmbeddingsBody) },
    responses: {
      200: jsonResponse(s.SetEmbeddingsResult, 'How many chunks were written'),
      ...commonErrors,
      ...bodyErrors,
      409: errorResponse(
        "`chunks_changed`: some chunk ids are not the document's chunks (any more), listed in details.chunk_ids; " +
          '`vector_search_unavailable`: the project has no vector search',
      ),
    },
  }),
  machineSearchByEmbedding: createRoute({
    method: 'post',
    path: '/knowledge/search',
    summary: "The best chunks of a tenant's knowledge for the agent during a call (the provider), with the query's " +
      'embedding when it has one: where the project has vector search and chunks have embeddings, by both fused ' +
      '(`ranking: hybrid`, the default) or by the embedding, else by the text (`mode` says which); one statement',
    security: securityOf.telephony,
    'x-api-key-scope': 'voice:route',
    middleware: needs.telephony('voice:route'),
    request: { body: jsonBody(s.KbMachineSearchBody) },
    responses: {
      200: jsonResponse(s.KbHitsSchema, 'The best chunks, best first'),
      ...telephonyErrors,
      ...bodyErrors,
      403: commonErrors[403],
      404: commonErrors[404],
      422: commonErrors[422],
      429: commonErrors[429],
      ...unavailableError,
    },
  }),
  machineSearch: createRoute({
    method: 'get',
    path: '/knowledge/search',
    summary: "The best chunks of a tenant's knowledge for the agent during a call (the provider)",
    security: securityOf.telephony,
    'x-api-key-scope': 'voice:route',
    middleware: needs.telephony('voice:route'),
    request: { query: s.KbMachineSearchQuery },
    responses: {
      200: jsonResponse(s.KbTextHitsSchema, 'The best chunks, best first'),
      ...telephonyErrors,
      403: commonErrors[403],
      404: commonErrors[404],
      422: commonErrors[422],
      // A tenant API key's reads (reads_per_minute_per_key); the provider's credentials are not limited.
      429: commonErrors[429],
      ...unavailableError,
    },
  }),
};

const KB_COLUMNS = ['id', 'tenant_id', 'name', 'description', 'created_at', 'updated_at'] as const satisfies readonly Column<
  'voice_knowledge_bases'
>[];
const DOC_COLUMNS = [
  'id',
  'tenant_id',
  'knowledge_base_id',
  'title',
  'source',
  'format',
  'embedded_chunks',
  'embeddings_written_at',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<
  'kb_documents'
>[];
type DocRow = Selected<'kb_documents', typeof DOC_COLUMNS> & { format: 'text' | 'markdown'; chunks: number };
const list: VoiceHandler<typeof routes.list> = async (c) => {
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const rows = await callerDb(c, tenantId, (tx) =>
    tx<AgentReadRow & { sort_key: string }>`
      select ${readableColumns(tx, 'voice_agents', c.var.access.staff)}, name as sort_key
      from ${readableRows(tx, 'voice_agents', tenantId, c.var.access.staff)}
      where tenant_id = ${tenantId} and ${q.active ? tx`active = ${q.active === 'true'}` : tx`true`}
        and ${after(tx, q.cursor, tx`name`, 'text', false)}
      order by name, id limit ${q.limit + 1}`);
  return c.json(page(rows, q.limit), 200);
};

const create: VoiceHandler<typeof routes.create> = async (c) => {
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const [agent] = await callerDb(c, tenantId, (tx) =>
    tx<AgentRow>`
      insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, greeting, language, active, knowledge_base_id)
      values (${tenantId}, ${b.name}, ${b.phone}, ${b.voice_id}, ${tx.json(b.llm_config)}, ${b.greeting ?? null},
              ${b.language}, ${b.active}, ${b.knowledge_base_id ?? null})
      returning ${tx.columns(AGENT_COLUMNS)}`);
  return c.json(agent, 201);
};

const read: VoiceHandler<typeof routes.read> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const [agent] = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx<AgentReadRow>`select ${readableColumns(tx, 'voice_agents', c.var.access.staff)}
        from ${readableRows(tx, 'voice_agents', tenantId, c.var.access.staff)} where tenant_id = ${tenantId} and id = ${id}`,
  );
  if (!agent) throw notFound('Agent');
  return c.json(agent, 200);
};

const update: VoiceHandler<typeof routes.update> = async (c) => {
  const { id } = c.req.valid('param');
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const set = (field: string) => field in b;
  const [agent] = await callerDb(c, tenantId, async (tx) => {
    // Taking the number over: the tenant's other active agent on the number this agent
    // will answer is parked first (one active agent per number is checked row by row),
    // and /route sees the hand-over whole at commit.
    if (b.take_over) {
      await tx`
        update public.voice_agents o set active = false
        from public.voice_agents a
        where a.tenant_id = ${tenantId} and a.id = ${id}
          and coalesce(${b.active ?? null}::boolean, a.active)
          and o.tenant_id = a.tenant_id and o.id <> a.id and o.active
          and o.phone = coalesce(${b.phone ?? null}::text, a.phone)`;
    }
    return await tx<AgentRow>`
      update public.voice_agents set
        name = coalesce(${b.name ?? null}::text, name),
        phone = coalesce(${b.phone ?? null}::text, phone),
        voice_id = coalesce(${b.voice_id ?? null}::text, voice_id),
        llm_config = coalesce(${b.llm_config ? tx.json(b.llm_config) : null}::jsonb, llm_config),
        greeting = case when ${set('greeting')} then ${b.greeting ?? null}::text else greeting end,
        language = coalesce(${b.language ?? null}::text, language),
        active = coalesce(${b.active ?? null}::boolean, active),
        knowledge_base_id = case when ${set('knowledge_base_id')} then ${
      b.knowledge_base_id ?? null
    }::uuid else knowledge_base_id end
      where tenant_id = ${tenantId} and id = ${id}
      returning ${tx.columns(AGENT_COLUMNS)}`;
  });
  if (!agent) throw notFound('Agent');
  return c.json(agent, 200);
};

const remove: VoiceHandler<typeof routes.remove> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const deleted = await callerDb(
    c,
    tenantId,
    (tx) => tx`delete from public.voice_agents where tenant_id = ${tenantId} and id = ${id} returning id`,
  );
  if (!deleted.length) throw notFound('Agent');
  return c.body(null, 204);
};

type KbRow = Selected<'voice_knowledge_bases', typeof KB_COLUMNS>;

const listKbs: VoiceHandler<typeof routes.listKbs> = async (c) => {
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const rows = await callerDb(c, tenantId, (tx) =>
    tx<KbRow & { sort_key: string }>`
      select ${tx.columns(KB_COLUMNS)}, name as sort_key from public.voice_knowledge_bases
      where tenant_id = ${tenantId} and ${after(tx, q.cursor, tx`name`, 'text', false)}
      order by name, id limit ${q.limit + 1}`);
  return c.json(page(rows, q.limit), 200);
};

const readKb: VoiceHandler<typeof routes.readKb> = async (c) => {
  const { kbId } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const [kb] = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx<KbRow>`select ${
        tx.columns(KB_COLUMNS)
      } from public.voice_knowledge_bases where tenant_id = ${tenantId} and id = ${kbId}`,
  );
  if (!kb) throw notFound('Knowledge base');
  return c.json(kb, 200);
};

const updateKb: VoiceHandler<typeof routes.updateKb> = async (c) => {
  const { kbId } = c.req.valid('param');
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const [kb] = await callerDb(c, tenantId, (tx) =>
    tx<KbRow>`
      update public.voice_knowledge_bases set
        name = coalesce(${b.name ?? null}::text, name),
        description = case when ${'description' in b} then ${b.description ?? null}::text else description end
      where tenant_id = ${tenantId} and id = ${kbId}
      returning ${tx.columns(KB_COLUMNS)}`);
  if (!kb) throw notFound('Knowledge base');
  return c.json(kb, 200);
};

/** The documents and chunks go with it (foreign keys, cascade); an agent that used it
 *  keeps its number and configuration and searches no knowledge (set null). */
const removeKb: VoiceHandler<typeof routes.removeKb> = async (c) => {
  const { kbId } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const deleted = await callerDb(
    c,
    tenantId,
    (tx) => tx`delete from public.voice_knowledge_bases where tenant_id = ${tenantId} and id = ${kbId} returning id`,
  );
  if (!deleted.length) throw notFound('Knowledge base');
  return c.body(null, 204);
};

const createKb: VoiceHandler<typeof routes.createKb> = async (c) => {
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const [kb] = await callerDb(c, tenantId, (tx) =>
    tx<Selected<'voice_knowledge_bases', typeof KB_COLUMNS>>`
      insert into public.voice_knowledge_bases (tenant_id, name, description) values (${tenantId}, ${b.name}, ${
      b.description ?? null
    })
      returning ${tx.columns(KB_COLUMNS)}`);
  return c.json(kb, 201);
};

/** The knowledge base, locked against its deletion for the rest of the transaction (key
 *  share: its edits go on), else 404. Lock order: the base, its documents, their chunks. */
async function knowledgeBaseKept(tx: Tx, tenantId: string, kbId: string): Promise<void> {
  const [kb] = await tx`
    select id from public.voice_knowledge_bases where tenant_id = ${tenantId} and id = ${kbId} for key share`;
  if (!kb) throw notFound('Knowledge base');
}

const docColumns = (tx: Tx) =>
  tx`${tx.columns(DOC_COLUMNS)}, (select count(*)::int from public.kb_chunks k
       where k.tenant_id = kb_documents.tenant_id and k.document_id = kb_documents.id) as chunks`;
/** A document as the API answers it, after a write. */
const docRow = async (tx: Tx, tenantId: string, id: string) =>
  (await tx<DocRow>`select ${docColumns(tx)} from public.kb_documents where tenant_id = ${tenantId} and id = ${id}`)[0];

const listDocs: VoiceHandler<typeof routes.listDocs> = async (c) => {
  const { kbId } = c.req.valid('param');
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const rows = await callerDb(c, tenantId, async (tx) => {
    const [kb] = await tx`select id from public.voice_knowledge_bases where tenant_id = ${tenantId} and id = ${kbId}`;
    if (!kb) throw notFound('Knowledge base');
    return await tx<DocRow & { sort_key: string }>`
      select ${docColumns(tx)}, created_at::text as sort_key from public.kb_documents
      where tenant_id = ${tenantId} and knowledge_base_id = ${kbId}
        and ${after(tx, q.cursor, tx`created_at`, 'timestamptz', true)}
      order by created_at desc, id desc limit ${q.limit + 1}`;
  });
  return c.json(page(rows, q.limit), 200);
};

const readDoc: VoiceHandler<typeof routes.readDoc> = async (c) => {
  const { kbId, id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const [doc] = await callerDb(c, tenantId, (tx) =>
    tx<DocRow & { content: string }>`
      select ${docColumns(tx)}, content from public.kb_documents
      where tenant_id = ${tenantId} and knowledge_base_id = ${kbId} and id = ${id}`);
  if (!doc) throw notFound('Document');
  return c.json(doc, 200);
};

const updateDoc: VoiceHandler<typeof routes.updateDoc> = async (c) => {
  const { kbId, id } = c.req.valid('param');
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const doc = await callerDb(c, tenantId, async (tx) => {
    // The knowledge base before the document: new chunks check their link to it (a key
    // share lock), and its deletion locks it before cascading to the documents. Locked
    // after the document, a content change and the base's deletion deadlocked (503).
    await knowledgeBaseKept(tx, tenantId, kbId);
    // The chunks are made again only when the content really changes (the trigger's WHEN,
    // 20261202180200), so an unchanged or unsent content keeps them.
    const changed = await tx`
      update public.kb_documents set
        title = coalesce(${b.title ?? null}::text, title),
        source = case when ${'source' in b} then ${b.source ?? null}::text else source end,
        format = coalesce(${b.format ?? null}::text, format),
        content = coalesce(${b.content ?? null}::text, content)
      where tenant_id = ${tenantId} and knowledge_base_id = ${kbId} and id = ${id} returning id`;
    if (!changed.length) throw notFound('Document');
    return await docRow(tx, tenantId, id);
  });
  return c.json(doc, 200);
};

const addDoc: VoiceHandler<typeof routes.addDoc> = async (c) => {
  const { kbId } = c.req.valid('param');
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const doc = await callerDb(c, tenantId, async (tx) => {
    // Kept until the insert: deleted in between, the insert's link to it failed (a 422
    // "referenced record does not exist" in place of this 404).
    await knowledgeBaseKept(tx, tenantId, kbId);
    const [{ id }] = await tx<{ id: string }>`
      insert into public.kb_documents (tenant_id, knowledge_base_id, title, source, format, content)
      values (${tenantId}, ${kbId}, ${b.title}, ${b.source ?? null}, ${b.format}, ${b.content}) returning id`;
    return await docRow(tx, tenantId, id);
  });
  return c.json(doc, 201);
};

const removeDoc: VoiceHandler<typeof routes.removeDoc> = async (c) => {
  const { kbId, id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const deleted = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx`delete from public.kb_documents where tenant_id = ${tenantId} and knowledge_base_id = ${kbId} and id = ${id} returning id`,
  );
  if (!deleted.length) throw notFound('Document');
  return c.body(null, 204);
};

const search: VoiceHandler<typeof routes.search> = async (c) => {
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const items = await callerDb(
    c,
    tenantId,
    (tx) => tx<Hit>`select * from private.kb_search(${tenantId}, ${q.q}, ${q.knowledge_base_id ?? null}, ${q.limit})`,
  );
  return c.json(byText(items), 200);
};

/** A search's hits as one jsonb array, in the order the search gave them. */
const hitsAsJson = (tx: Tx, from: ReturnType<Tx>) =>
  tx`coalesce((select jsonb_agg(to_jsonb(h) - 'n' order by h.n) from ${from} with ordinality h(chunk_id, document_id,
       knowledge_base_id, title, ordinal, content, score, n)), '[]')`;

/** Both searches of a query with its embedding in one statement: by the embedding (only
 *  where the project has vector search: elsewhere the search would ignore the embedding
 *  and answer by the text again) and by the text (for `embedding` ranking only when the
 *  embedding found fewer than the limit); knowledge-ranking.ts orders them. Each search
 *  is an uncorrelated subquery under a CASE, run only when its branch is taken. A wrong
 *  embedding is 422 naming it, with the database's reason. */
async function findChunks(
  search: (embedding: number[] | null, depth: number) => ReturnType<Tx>,
  db: Tx,
  embedding: number[],
  ranking: Ranking,
  limit: number,
): Promise<Found> {
  const depth = ranking === 'hybrid' ? fusionDepth(limit) : limit;
  let searched: Searched;
  try {
    [searched] = await db<Searched>`
      with e as materialized (
        select case when private.kb_embedding_dimensions() is not null then ${hitsAsJson(db, search(embedding, depth))} end
          as by_embedding
      )
      select e.by_embedding,
             case when ${ranking === 'hybrid'} or coalesce(jsonb_array_length(e.by_embedding), 0) < ${limit}
                  then ${hitsAsJson(db, search(null, depth))} else '[]'::jsonb end as by_text
      from e`;
  } catch (err) {
    if (isPgError(err) && err.code === '22023' && err.message.startsWith('embedding')) {
      throw unprocessable('The embedding is not acceptable', { fields: [{ field: 'embedding', message: err.message }] });
    }
    throw err;
  }
  return rankHits(searched, ranking, limit);
}

const searchByEmbedding: VoiceHandler<typeof routes.searchByEmbedding> = async (c) => {
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const kbId = b.knowledge_base_id ?? null;
  if (!b.embedding) {
    const items = await callerDb(
      c,
      tenantId,
      (tx) => tx<Hit>`select * from private.kb_search(${tenantId}, ${b.q}, ${kbId}, ${b.limit})`,
    );
    return c.json(byText(items), 200);
  }
  const embedding = b.embedding;
  const found = await callerDb(c, tenantId, (tx) =>
    findChunks(
      (e, depth) => tx`private.kb_search(${tenantId}, ${b.q}, ${kbId}, ${depth}, ${e}::real[])`,
      tx,
      embedding,
      b.ranking,
      b.limit,
    ));
  return c.json(found, 200);
};

type ChunkRow = { id: string; ordinal: number; content: string; embedded: boolean };

const listChunks: VoiceHandler<typeof routes.listChunks> = async (c) => {
  const { kbId, id } = c.req.valid('param');
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const answer = await callerDb(c, tenantId, async (tx) => {
    const [doc] =
      await tx`select id from public.kb_documents where tenant_id = ${tenantId} and knowledge_base_id = ${kbId} and id = ${id}`;
    if (!doc) throw notFound('Document');
    const items = await tx<ChunkRow>`
      select * from private.kb_chunks_of_document(${tenantId}, ${id}, ${q.after ?? null}, ${q.limit + 1}, ${q.embedded ?? null})`;
    const [{ dimensions }] = await tx<{ dimensions: number | null }>`select private.kb_embedding_dimensions() as dimensions`;
    return { items, dimensions };
  });
  const more = answer.items.length > q.limit;
  const items = answer.items.slice(0, q.limit);
  return c.json({ items, next: more ? items[items.length - 1].ordinal : null, embedding_dimensions: answer.dimensions }, 200);
};

const setEmbeddings: VoiceHandler<typeof routes.setEmbeddings> = async (c) => {
  const { kbId, id } = c.req.valid('param');
  const b = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const [{ written }] = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx<{ written: number }>`select private.kb_set_embeddings(${tenantId}, ${kbId}, ${id}, ${tx.json(b.items)}) as written`,
  );
  return c.json({ written }, 200);
};

/** One statement on the pool, like the rest of the provider's call path; the tenant's
 *  plan must include knowledge_base (private.kb_search_for_call). */
const machineSearch: VoiceHandler<typeof routes.machineSearch> = async (c) => {
  const q = c.req.valid('query');
  // A tenant's API key searches its own tenant's knowledge only.
  if (outsideTelephonyTenant(c, q.tenant_id)) throw notFound('Tenant');
  const db = callPathDb();
  const items = await db<Hit>`select * from private.kb_search_for_call(${q.tenant_id}, ${q.q}, ${searchedKb(db, q)}, ${q.limit})`;
  return c.json(byText(items), 200);
};

/** No knowledge base has it: what an agent without one (or not of the tenant) searches. */
const NO_KNOWLEDGE_BASE = '00000000-0000-0000-0000-000000000000';

/** The knowledge base the provider's search reads, as an argument of the same statement:
 *  the agent's own when it names the agent on the call (so an agent without one finds
 *  nothing rather than every other agent's knowledge), else the one it names (the
 *  schemas require one of the two: never every knowledge base of the tenant). */
function searchedKb(db: Sql, q: { tenant_id: string; agent_id?: string; knowledge_base_id?: string }) {
  return q.agent_id
    ? db`coalesce((select a.knowledge_base_id from public.voice_agents a where a.tenant_id = ${q.tenant_id} and a.id = ${q.agent_id}),
                  ${NO_KNOWLEDGE_BASE}::uuid)`
    : db`${q.knowledge_base_id ?? NO_KNOWLEDGE_BASE}::uuid`;
}

/** As machineSearch, with the query's embedding: one statement on the call path's pool,
 *  both searches in it. */
const machineSearchByEmbedding: VoiceHandler<typeof routes.machineSearchByEmbedding> = async (c) => {
  const b = c.req.valid('json');
  if (outsideTelephonyTenant(c, b.tenant_id)) throw notFound('Tenant');
  const db = callPathDb();
  const kbId = searchedKb(db, b);
  if (!b.embedding) {
    const items = await db<Hit>`select * from private.kb_search_for_call(${b.tenant_id}, ${b.q}, ${kbId}, ${b.limit})`;
    return c.json(byText(items), 200);
  }
  const found = await findChunks(
    (e, depth) => db`private.kb_search_for_call_with_embedding(${b.tenant_id}, ${b.q}, ${kbId}, ${depth}, ${e}::real[])`,
    db,
    b.embedding,
    b.ranking,
    b.limit,
  );
  return c.json(found, 200);
};

export const agents = createRouter()
  .openapi(routes.list, list)
  .openapi(routes.create, create)
  .openapi(routes.read, read)
  .openapi(routes.update, update)
  .openapi(routes.remove, remove)
  .openapi(routes.search, search)
  .openapi(routes.searchByEmbedding, searchByEmbedding)
  .openapi(routes.machineSearch, machineSearch)
  .openapi(routes.machineSearchByEmbedding, machineSearchByEmbedding)
  .openapi(routes.listKbs, listKbs)
  .openapi(routes.createKb, createKb)
  // After /knowledge-bases/search, which would otherwise be read as a knowledge base's id.
  .openapi(routes.readKb, readKb)
  .openapi(routes.updateKb, updateKb)
  .openapi(routes.removeKb, removeKb)
  .openapi(routes.listDocs, listDocs)
  .openapi(routes.addDoc, addDoc)
  .openapi(routes.readDoc, readDoc)
  .openapi(routes.updateDoc, updateDoc)
  .openapi(routes.listChunks, listChunks)
  .openapi(routes.setEmbeddings, setEmbeddings)
  .openapi(routes.removeDoc, removeDoc);
