-- The attachments bucket is private whatever was there before. Its migration
-- (20261126101200) made it private only when it did not exist yet (`on conflict do
-- nothing`): a project whose `attachments` bucket had been made public (by hand, or by an
-- earlier setup) kept serving every tenant's files at a public URL that never expires,
-- internal-note attachments included, past the API's five-minute signed URLs and without
-- the 50 MiB limit. As for call recordings (20261203251000), the bucket is now set
-- private with its limit wherever it exists; the local stack has no storage schema.
do $$
begin
  if exists (select 1 from information_schema.tables where table_schema = 'storage' and table_name = 'buckets') then
    insert into storage.buckets (id, name, public, file_size_limit)
    values ('attachments', 'attachments', false, 52428800)
    on conflict (id) do update set public = false, file_size_limit = excluded.file_size_limit;
  end if;
end
$$;
