-- A reply's job looked in the conversation for a message an earlier POST may have saved
-- only from its second attempt on: an operator's private.retry_job (attempts back to 0)
-- after a POST Chatwoot saved but whose answer was lost made the next attempt a first
-- one, which posted the reply again — the customer read it twice. The reply now records
-- when its first POST began (in a transaction of its own, before the POST), and the job
-- looks for the message whenever one began, whatever its attempt count.
alter table private.chatwoot_replies add column post_begun_at timestamptz;

-- Marks the reply's POST as begun; true when one had begun before (a POST that Chatwoot
-- may have saved: look for it first).
create function private.chatwoot_reply_post_begins(p_reply_id bigint) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_before timestamptz;
begin
  select r.post_begun_at into v_before from private.chatwoot_replies r where r.id = p_reply_id for no key update;
  if not found then
    return false;
  end if;
  if v_before is null then
    update private.chatwoot_replies set post_begun_at = now() where id = p_reply_id;
  end if;
  return v_before is not null;
end;
$$;
revoke all on function private.chatwoot_reply_post_begins(bigint) from public, anon, authenticated;
grant execute on function private.chatwoot_reply_post_begins(bigint) to service_role;
