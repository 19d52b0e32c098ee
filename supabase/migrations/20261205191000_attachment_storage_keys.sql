-- An attachment's object key is one Supabase Storage takes. The key ended in the file's
-- name as given, and Storage refuses any key outside ASCII letters, digits and
-- `_/!-.*'() &$@=;:+,?` (isValidKey, 400 InvalidKey): "Rechnung März.pdf", a CJK name,
-- or a macOS screenshot's (a narrow no-break space before "AM") could not be uploaded
-- on a hosted project, a 500 there while the local folder took them. The key's last
-- segment is now the name with every other character written as `_`; the attachment's
-- id before it keeps keys apart, and the name people see and download under is
-- file_name, unchanged (the download URL carries it). Rows already stored keep theirs.
create or replace function private.set_attachment_location() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.uploaded_by := private.current_user_id();
  if new.message_id is not null and not exists (
    select 1 from public.ticket_messages m
    where m.tenant_id = new.tenant_id and m.id = new.message_id and m.ticket_id = new.ticket_id
      and m.author_id = new.uploaded_by
  ) then
    raise exception 'a file can be attached only to your own message' using errcode = 'PT403';
  end if;
  new.bucket := 'attachments';
  -- The S3 "safe characters" Storage names, a subset of what it takes: nothing there
  -- needs encoding care. file_name is never '.' or '..' (its check), and one character
  -- becomes one, so the segment is neither.
  new.path := new.tenant_id || '/' || new.ticket_id || '/' || new.id || '/'
    || regexp_replace(new.file_name, '[^A-Za-z0-9_.!*''()-]', '_', 'g');
  new.status := 'pending';
  return new;
end;
$$;
