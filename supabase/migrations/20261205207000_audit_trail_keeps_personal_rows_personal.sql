-- A tenant's audit trail no longer shows its admins what is personal to someone else
-- (issue 14, review of the tenants function).
--
-- Personal macros and canned responses are their owner's alone (their policies show them
-- to nobody else, admins included), and a notification is its recipient's. Their audit
-- rows carry the whole row, so GET /tenants/{id}/audit, or a select on audit_logs,
-- showed an admin every colleague's private replies and what each was notified of. Those
-- rows are now the owner's or recipient's to read (a platform admin reads everything, as
-- before); the rest of the trail is unchanged.
drop policy audit_logs_select on public.audit_logs;
create policy audit_logs_select on public.audit_logs for select to authenticated
  using (
    (select private.is_platform_admin())
    or (
      tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
      and not (
        (table_name in ('macros', 'canned_responses')
          and coalesce(new_data, old_data) ->> 'scope' = 'personal'
          and (coalesce(new_data, old_data) ->> 'owner_id') is distinct from (select private.current_user_id())::text)
        or (table_name = 'notifications'
          and (coalesce(new_data, old_data) ->> 'user_id') is distinct from (select private.current_user_id())::text)
      )
    )
  );
