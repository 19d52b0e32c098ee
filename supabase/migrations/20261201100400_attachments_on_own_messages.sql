-- Issue 9: a customer attached a file to a staff member's reply on their own ticket
-- (POST /tickets/{id}/attachments with the reply's message_id answered 201): the
-- insert policy checked only that the message belongs to the ticket. An attachment may
-- reference only its uploader's own message. The rule lives in the trigger that already
-- decides who the uploader is, so it holds for every path, and it raises PT403 (the
-- functions answer 403).
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
  new.path := new.tenant_id || '/' || new.ticket_id || '/' || new.id || '/' || new.file_name;
  new.status := 'pending';
  return new;
end;
$$;
