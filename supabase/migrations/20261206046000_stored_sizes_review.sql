-- After review of 20261206044000 and 20261206045000.
--
-- 1. The api_keys usage counters are recounted: keys revoked by their creator's deletion
--    under 20261206038000 (in a BEFORE trigger the count never saw) were still counted.
-- 2. An uploaded attachment's stored size moves the quota through the table's own count
--    (count_usage now fires on any update and charges the difference), not a second call
--    in the size trigger that an UPDATE naming size_bytes too would have doubled.
-- 3. An object larger than the largest attachment (50 MiB, where the bucket was made
--    before its limit) is refused as a plan refusal would be (PT403
--    `attachment_too_large`), so the check releases it instead of failing on the column's
--    check for ever.
-- 4. A disabled person whose last login goes keeps no deleted_at (which hid them from
--    their co-members once re-enabled); only the retired get one.

update private.usage_counters u
set used = (select count(*) from public.api_keys k where k.tenant_id = u.tenant_id and k.revoked_at is null)
where u.metric = 'api_keys';

drop trigger count_usage on public.attachments;
create trigger count_usage after insert or delete or update on public.attachments
  for each row execute function private.count_attachment();

-- Redefined (20261206044000_attachment_sizes_as_stored.sql): sets the size only; the
-- count follows it.
create or replace function private.attachment_size_as_stored() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_stored bigint;
begin
  if old.status = 'pending' and new.status = 'uploaded' then
    v_stored := private.stored_object_size(new.bucket, new.path);
    if v_stored is not null and v_stored > 52428800 then
      raise exception 'The stored file is larger than an attachment may be' using errcode = 'PT403',
        detail = pg_catalog.jsonb_build_object('code', 'attachment_too_large', 'details',
          pg_catalog.jsonb_build_object('max', 52428800, 'stored', v_stored))::text;
    end if;
    if v_stored is not null and v_stored > 0 then
      new.size_bytes := v_stored;
    end if;
  end if;
  return new;
end;
$$;

-- Redefined (20261206045000_lifecycle_review.sql): deleted_at for the retired only.
create or replace function private.retire_identity(p_issuer text, p_subject text) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid;
begin
  select i.user_id into v_user from public.user_identities i where i.issuer = p_issuer and i.subject = p_subject;
  if v_user is null then
    return false;
  end if;
  -- Two logins of one person deleted at once each see the other's still there: the
  -- person's row orders them, so the second sees the first gone and retires the person.
  perform 1 from public.users u where u.id = v_user for no key update;
  delete from public.user_identities where issuer = p_issuer and subject = p_subject;
  -- Another login of theirs remains (Clerk beside Supabase Auth): only this one goes.
  if exists (select 1 from public.user_identities i where i.user_id = v_user) then
    return true;
  end if;
  delete from public.memberships where user_id = v_user;
  -- Someone a platform admin disabled stays disabled (a new sign-up brings back only the
  -- retired, not the disabled).
  update public.users set status = case when status = 'disabled' then 'disabled' else 'deleted' end,
                          deleted_at = case when status = 'disabled' then deleted_at else now() end
  where id = v_user;
  return true;
end;
$$;
