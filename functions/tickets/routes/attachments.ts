// Attachments: registered here, their bytes go straight to object storage through
// short-lived signed URLs.
import { createRoute, z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Tx } from '../../../shared/db.ts';
import type { Tables } from '../../../shared/rows.ts';
import { commonErrors, conflictError, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import { fromStorage, objectStorage } from '../../../shared/storage.ts';
import * as s from '../schemas.ts';
import { ATTACHMENT_COLUMNS, type AttachmentRow, requireAdmin, type TicketsHandler, visibleTicket } from './common.ts';

/** An attachment with where its bytes are kept (never shown to clients). */
type StoredAttachment = AttachmentRow & Pick<Tables<'attachments'>, 'bucket' | 'path'>;
const STORED_COLUMNS = [...ATTACHMENT_COLUMNS, 'bucket', 'path'] as const;

const routes = {
  register: createRoute({
    method: 'post',
    path: '/{id}/attachments',
    summary: 'Register an attachment and get a signed URL to upload its bytes to',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }),
    request: { params: s.TicketIdParam, body: jsonBody(s.AttachmentBody) },
    responses: {
      201: jsonResponse(
        z.object({ attachment: s.AttachmentSchema, upload: s.SignedUrlSchema }),
        'Where to upload',
      ),
      ...commonErrors,
      ...conflictError, // ticket_merged: the ticket was merged into another (details.merged_into_id)
    },
  }),
  read: createRoute({
    method: 'get',
    path: '/{id}/attachments/{attachmentId}',
    summary: 'An attachment with a short-lived signed download URL',
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }),
    request: { params: s.AttachmentParam },
    responses: {
      200: jsonResponse(
        z.object({ attachment: s.AttachmentSchema, download: s.SignedUrlSchema.nullable() }),
        'The attachment',
      ),
      ...commonErrors,
    },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/{id}/attachments/{attachmentId}',
    summary: "Delete an attachment and its bytes (admins): its size is given back to the plan's storage",
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // admins: checked once the ticket is visible
    request: { params: s.AttachmentParam },
    responses: { 204: { description: 'Deleted' }, ...commonErrors },
  }),
};

const register: TicketsHandler<typeof routes.register> = async (c) => {
  const { id } = c.req.valid('param');
  const body = c.req.valid('json');
  const access = c.var.access;
  const stored = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    if (body.message_id) {
      const [m] =
        await tx`select 1 from public.ticket_messages where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${body.message_id}`;
      if (!m) throw notFound('Message');
    }
    const insert = async () =>
      (await tx<StoredAttachment>`
        insert into public.attachments (tenant_id, ticket_id, message_id, file_name, content_type, size_bytes)
        values (${access.tenantId}, ${id}, ${body.message_id ?? null}, ${body.file_name},
                ${body.content_type}, ${body.size_bytes})
        returning ${tx.columns(STORED_COLUMNS)}
      `)[0];
    if (access.staff) return await insert();
    // A customer's pending registrations are bounded (20261206036000), and one stays
    // pending until someone reads it or its check runs, two hours on: a customer who sent
    // their files would be refused for them. At the bound, the files of theirs that did
    // arrive are marked so first, and the registration is tried once more.
    await tx`savepoint register`;
    try {
      return await insert();
    } catch (err) {
      if (!pendingUploadsFull(err)) throw err;
      await tx`rollback to savepoint register`;
      if (!(await settleArrivedUploads(tx, access.tenantId))) throw err;
      return await insert();
    }
  });
  const { bucket, path, ...attachment } = stored;
  // Storage down or refusing to sign: 503 to retry (the request's transaction rolls
  // back: nothing is registered or charged).
  const upload = await fromStorage(() =>
    objectStorage().createUploadUrl(bucket, path, { contentType: body.content_type, size: body.size_bytes })
  );
  return c.json({ attachment, upload }, 201);
};

/** The database refused a customer's registration for their pending bytes or files. */
const pendingUploadsFull = (err: unknown) =>
  (err as { code?: string }).code === 'PT429' &&
  /customer_pending_upload(s|_bytes)/.test((err as { detail?: string }).detail ?? '');

/** Marks the caller's pending attachments in the tenant whose files have arrived (up to
 *  the 20 oldest, asked of the storage at once; one it cannot answer for stays pending).
 *  Whether any was. */
async function settleArrivedUploads(tx: Tx, tenantId: string): Promise<boolean> {
  const pending = await tx<{ id: string; bucket: string; path: string }>`
    select id, bucket, path from public.attachments
    where tenant_id = ${tenantId} and uploaded_by = (select private.current_user_id()) and status = 'pending'
    order by created_at limit 20`;
  const storage = objectStorage();
  const arrived = (await Promise.all(
    pending.map(async (a) => ((await storage.exists(a.bucket, a.path).catch(() => false)) ? a.id : null)),
  )).filter((id): id is string => id !== null);
  let marked = 0;
  for (const id of arrived) {
    // One the plan has no room for at its stored size (or past 50 MiB) stays pending, for
    // its check to release; the others are marked.
    await tx`savepoint settle_arrived`;
    try {
      await tx`select private.mark_attachment_uploaded(${tenantId}, ${id})`;
      marked++;
    } catch (err) {
      if ((err as { code?: string }).code !== 'PT403') throw err;
      await tx`rollback to savepoint settle_arrived`;
    }
  }
  return marked > 0;
}

const read: TicketsHandler<typeof routes.read> = async (c) => {
  const { id, attachmentId } = c.req.valid('param');
  const access = c.var.access;
  const stored = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    const [a] = await tx<StoredAttachment | undefined>`
      select ${tx.columns(STORED_COLUMNS)} from public.attachments
      where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${attachmentId}
    `;
    if (!a) throw notFound('Attachment');
    // Storage unreachable: still pending, as before it answered; the next read asks again.
    if (a.status === 'pending' && (await objectStorage().exists(a.bucket, a.path).catch(() => false))) {
      // Marked, it counts the bytes the storage holds (20261206044000): read it again.
      await tx`select private.mark_attachment_uploaded(${access.tenantId}, ${attachmentId})`;
      const [marked] = await tx<StoredAttachment>`
        select ${
        tx.columns(STORED_COLUMNS)
      } from public.attachments where tenant_id = ${access.tenantId} and id = ${attachmentId}`;
      // Deleted while the mark waited for its row (an admin's delete, the upload check's
      // release): gone, as for a read just after (it was a 500).
      if (!marked) throw notFound('Attachment');
      // A suspended tenant is read-only: the mark writes nothing there, and the row stays
      // pending until the upload check. The file is in the storage all the same, and
      // reading it is a read: it is shown as uploaded (it was pending with no download).
      return marked.status === 'pending' ? { ...marked, status: 'uploaded' as const } : marked;
    }
    return a;
  });
  const { bucket, path, ...attachment } = stored;
  const download = attachment.status === 'uploaded'
    ? await fromStorage(() =>
      objectStorage().createDownloadUrl(bucket, path, {
        fileName: attachment.file_name,
        contentType: attachment.content_type,
      })
    )
    : null;
  return c.json({ attachment, download }, 200);
};

// The row's delete gives its bytes back to the plan (count_usage), queues its object's
// storage-delete jobs (objects_erased) and is audited; the database allows it to admins
// alone (attachments_delete, 20261207106000), on PostgREST too.
const remove: TicketsHandler<typeof routes.remove> = async (c) => {
  const { id, attachmentId } = c.req.valid('param');
  const access = c.var.access;
  await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    requireAdmin(access, 'Only admins delete attachments');
    const [gone] = await tx`
      delete from public.attachments where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${attachmentId}
      returning id`;
    if (!gone) throw notFound('Attachment');
  });
  return c.body(null, 204);
};

export const attachments = createRouter()
  .openapi(routes.register, register)
  .openapi(routes.read, read)
  .openapi(routes.remove, remove);
