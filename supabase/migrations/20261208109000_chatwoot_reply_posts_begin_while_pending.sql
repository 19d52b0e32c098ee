-- Review of 20261208103000: a reply's POST was marked as begun (and the job posted) for a
-- reply no longer pending — its echo arriving between the job's read and the mark had
-- claimed it as sent (private.claim_chatwoot_echo), and the look for the message then
-- passed over that one as taken: the job posted it a second time. The mark now answers
-- null for a reply gone or no longer pending, and the job posts nothing.

-- Redefined (20261208103000_chatwoot_replies_remember_their_posts.sql): pending replies only.
create or replace function private.chatwoot_reply_post_begins(p_reply_id bigint) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_reply private.chatwoot_replies;
begin
  select * into v_reply from private.chatwoot_replies r where r.id = p_reply_id for no key update;
  if not found or v_reply.status <> 'pending' then
    return null;
  end if;
  if v_reply.post_begun_at is null then
    update private.chatwoot_replies set post_begun_at = now() where id = p_reply_id;
  end if;
  return v_reply.post_begun_at is not null;
end;
$$;
