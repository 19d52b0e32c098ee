-- An uploaded attachment counts the bytes the storage holds, not the ones announced.
--
-- A registration announces size_bytes and the storage quota is charged that much. The
-- local stack's upload URL takes exactly the announced bytes, but Supabase Storage's
-- signed upload URLs take any size up to the bucket's limit: on a hosted project a member
-- could announce 50 MiB, upload one byte and keep 50 MiB of the plan's storage charged for
-- good (the tenant's storage filled by announcements that are never released, since the
-- file did arrive), or announce one byte and store 50 MiB past the quota. When an
-- attachment becomes `uploaded` (read, or its check), its size is now what
-- `storage.objects` records for its object (`metadata.size`), where that table exists, and
-- the quota follows the difference: a refund, or a charge the plan may refuse (403
-- plan_limit_reached to the reader; the check releases such an attachment — deletes it,
-- its object with it — as it releases one never uploaded). Without the storage schema
-- (the local stack) nothing changes.

-- The size the storage records for an object, or null (no storage schema, no such object,
-- or no size recorded). Dynamic: the table exists only where Supabase Storage does.
create function private.stored_object_size(p_bucket text, p_path text) returns bigint
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_size bigint;
begin
  if pg_catalog.to_regclass('storage.objects') is null then
    return null;
  end if;
  execute 'select case when (o.metadata ->> ''size'') ~ ''^[0-9]+$'' then (o.metadata ->> ''size'')::bigint end
           from storage.objects o where o.bucket_id = $1 and o.name = $2'
    into v_size using p_bucket, p_path;
  return v_size;
end;
$$;
revoke all on function private.stored_object_size(text, text) from public, anon, authenticated, service_role;

-- On pending → uploaded: the stored size, and the quota moved by the difference (the
-- count_usage trigger fires only for an UPDATE that names size_bytes itself).
create function private.attachment_size_as_stored() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_stored bigint;
begin
  if old.status = 'pending' and new.status = 'uploaded' then
    v_stored := private.stored_object_size(new.bucket, new.path);
    if v_stored is not null and v_stored > 0 and v_stored <> new.size_bytes then
      perform private.use_quota(new.tenant_id, 'storage_bytes', v_stored - new.size_bytes);
      new.size_bytes := v_stored;
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.attachment_size_as_stored() from public, anon, authenticated;
create trigger attachment_size_as_stored before update of status on public.attachments
  for each row execute function private.attachment_size_as_stored();

-- Redefined (20261206015000_abandoned_attachments_released.sql): a file larger than
-- announced that the plan has no room for is released, as one never uploaded is.
create or replace function private.settle_pending_attachment(p_tenant_id uuid, p_attachment_id uuid, p_uploaded boolean)
returns text
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_uploaded then
    begin
      update public.attachments set status = 'uploaded'
      where tenant_id = p_tenant_id and id = p_attachment_id and status = 'pending';
      return case when found then 'uploaded' else 'settled' end;
    exception when sqlstate 'PT403' then
      -- The quota refused the stored size (plan_limit_reached): released below.
      null;
    end;
  end if;
  delete from public.attachments where tenant_id = p_tenant_id and id = p_attachment_id and status = 'pending';
  return case when found then 'released' else 'settled' end;
end;
$$;
