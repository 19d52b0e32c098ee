-- A Clerk organisation whose tenant was purged, or that Clerk deleted, is remembered as
-- gone (review of the Clerk identity sync, issue 14).
--
-- A tenant purged by a platform admin takes its organisation link with it (on delete
-- cascade). The organisation's next event found no link: an organization.updated (a
-- rename, a new logo) made a new tenant for it with a fresh plan, which later membership
-- events filled with members, undoing the purge; membership events in between were taken
-- for an organisation not received yet, 409 for a day. The same followed an
-- organization.deleted applied before the organisation's creation. Now a purge leaves the
-- organisation's newest version marked deleted, organization.deleted marks it too
-- (shared/webhooks/clerk.ts), and the mark stays whatever newer event comes (Clerk never
-- reuses an organisation's id): such an organisation makes no tenant and its membership
-- events are ignored at once. An operator who wants it back as a tenant deletes its row of
-- private.clerk_object_versions.

create function private.remember_purged_organization() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- Only the tenant's own deletion (a cascade): a link an operator removes is no purge.
  if exists (select 1 from public.tenants t where t.id = old.tenant_id) then
    return null;
  end if;
  insert into private.clerk_object_versions (issuer, object, event_at, deleted)
  values (old.issuer, 'organization:' || old.org_id, now(), true)
  on conflict (issuer, object) do update set deleted = true;
  return null;
end;
$$;
revoke all on function private.remember_purged_organization() from public, anon, authenticated;
create trigger remember_purged_organization after delete on public.tenant_org_links
  for each row execute function private.remember_purged_organization();

comment on column private.clerk_object_versions.deleted is
  'Whether the object is deleted: its newest event deleted it (user.deleted), or, for an organisation, any did or its tenant was purged (kept whatever newer event comes)';
