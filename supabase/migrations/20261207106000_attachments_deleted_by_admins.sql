-- Admins delete attachments (review, issue 14).
--
-- A plan's storage (storage_bytes) counts every attachment and went down only when one's
-- row was deleted, which no API role could do: tickets are soft-deleted, messages are
-- kept, and nothing purges them. A tenant that reached its plan's storage was refused
-- every new upload (403 plan_limit_reached) for good, whatever it removed. Admins (and
-- platform admins) may now delete an attachment, through the API
-- (DELETE /tickets/{id}/attachments/{attachmentId}) or the table: the row's delete gives
-- its bytes back (count_usage), queues its object's storage-delete jobs (objects_erased)
-- and is audited, as any attachment's delete was already.
grant delete on public.attachments to authenticated;
create policy attachments_delete on public.attachments for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
