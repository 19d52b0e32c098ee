-- A mention added by editing a note is told as a new note's is (stop 60's known limit,
-- issue 14).
--
-- The mentions of an internal note (`[@Name](mention://user/<uuid>/Name)`) made the staff
-- named followers and told them (notification `mentioned`, `ticket.mentioned`) when the
-- note was written; an edit adding one told no one: a colleague asked for in a corrected
-- note never heard of it. Both now go through one helper, told the mentions the content
-- had before (none for a new note): only a mention the note did not have is told, so
-- editing a typo elsewhere in the note tells no one twice.

create function private.note_mentions_told(p_note public.ticket_messages, p_before text) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_mentioned uuid;
  v_number bigint;
  v_pattern constant text :=
    'mention://user/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})';
begin
  for v_mentioned in
    select distinct m[1]::uuid from pg_catalog.regexp_matches(p_note.content, v_pattern, 'g') m
    except
    select m[1]::uuid from pg_catalog.regexp_matches(coalesce(p_before, ''), v_pattern, 'g') m
  loop
    -- Only staff of this tenant can be mentioned; anyone else is text.
    continue when v_mentioned = p_note.author_id or not exists (
      select 1 from public.memberships ms
      where ms.tenant_id = p_note.tenant_id and ms.user_id = v_mentioned and ms.role in ('agent', 'admin'));
    insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
    values (p_note.tenant_id, p_note.ticket_id, v_mentioned, 'mentioned', p_note.author_id)
    on conflict (tenant_id, ticket_id, user_id) do nothing;
    insert into public.notifications (tenant_id, user_id, ticket_id, type, actor_user_id, data)
    values (p_note.tenant_id, v_mentioned, p_note.ticket_id, 'mentioned', p_note.author_id,
            jsonb_build_object('message_id', p_note.id));
    select t.number into v_number from public.tickets t where t.tenant_id = p_note.tenant_id and t.id = p_note.ticket_id;
    perform private.emit_webhook_event(p_note.tenant_id, 'ticket.mentioned', 'ticket:' || p_note.ticket_id,
      jsonb_build_object('type', 'ticket.mentioned', 'tenant_id', p_note.tenant_id,
        'data', jsonb_build_object('ticket_id', p_note.ticket_id, 'number', v_number, 'message_id', p_note.id,
                                   'user_id', v_mentioned, 'by', p_note.author_id),
        'occurred_at', private.api_timestamp(clock_timestamp())));
  end loop;
end;
$$;
revoke all on function private.note_mentions_told(public.ticket_messages, text) from public, anon, authenticated;

-- Redefined (20261202050300_followers_notifications.sql): a new note's mentions through
-- the helper.
create or replace function private.ticket_messages_followers() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.notify_followers(new.tenant_id, new.ticket_id,
    case new.type when 'note' then 'note.created' when 'system' then 'system.created' else 'message.created' end,
    new.author_id, jsonb_build_object('message_id', new.id));
  if new.type = 'note' then
    perform private.note_mentions_told(new, null);
  end if;
  return null;
end;
$$;

-- An edited note's new mentions.
create function private.ticket_note_mentions_edited() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.note_mentions_told(new, old.content);
  return null;
end;
$$;
revoke all on function private.ticket_note_mentions_edited() from public, anon, authenticated;
create trigger ticket_note_mentions_edited after update of content on public.ticket_messages
  for each row when (new.type = 'note' and new.content is distinct from old.content)
  execute function private.ticket_note_mentions_edited();
