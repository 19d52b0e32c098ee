-- The knowledge quota's early look runs after the row-level security check (issue 14;
-- 20261203230000_knowledge_quota_precheck.sql).
--
-- It was a before-row trigger, and PostgreSQL checks a policy's WITH CHECK after the
-- before-row triggers: anyone signed in could insert a document under another tenant's
-- id and, where that tenant was near its limit, be answered plan_limit_reached with its
-- limit, usage and plan (a definer function read them) instead of the policy's refusal
-- — and learn, by the size sent, how close it was. After-row triggers run once the row
-- has passed its checks (the policy's, constraints), in name order, so the look is now
-- an after-row trigger named to run before the chunks are written (kb_document_chunks,
-- kb_document_chunks_changed): a refused upload still writes no chunk, a write the
-- policy refuses never reaches it, and a content breaking a check constraint is that
-- constraint's 23514, not a 403.

drop trigger within_quota on public.kb_documents;
-- The function returns new, which an after trigger ignores.
create trigger check_quota_room after insert or update of content on public.kb_documents
  for each row execute function private.kb_document_within_quota();
