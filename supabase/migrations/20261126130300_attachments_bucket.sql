-- On a hosted project, the private Storage bucket attachments live in. Clients never
-- touch it directly: the tickets function hands out short-lived signed URLs, under the
-- `<tenant_id>/` prefix. The local stack has no storage schema and keeps the bytes in a
-- folder instead (shared/storage.ts).
do $$
begin
  if exists (select 1 from information_schema.tables where table_schema = 'storage' and table_name = 'buckets') then
    insert into storage.buckets (id, name, public, file_size_limit)
    values ('attachments', 'attachments', false, 52428800)
    on conflict (id) do nothing;
  end if;
end
$$;
