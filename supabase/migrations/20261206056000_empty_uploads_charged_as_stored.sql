-- An empty uploaded file is charged one byte, not the size announced for it.
--
-- attachment_size_as_stored took the stored size only when it was above zero. Supabase
-- Storage takes an empty body on a signed upload URL, and the object then exists: the
-- attachment became `uploaded` still charged its announced size (up to 50 MiB) for good,
-- and, uploaded, no longer counted among the customer's pending bytes, so a customer
-- could fill the tenant's storage with empty files past the pending-uploads limit. The
-- stored size is now taken whatever it is, an empty file as the column's least (1 byte).

-- Redefined (20261206046000_stored_sizes_review.sql).
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
    -- An empty file is charged as the smallest attachment (the column's least, 1 byte),
    -- not as the size announced for it.
    if v_stored is not null then
      new.size_bytes := greatest(v_stored, 1);
    end if;
  end if;
  return new;
end;
$$;
