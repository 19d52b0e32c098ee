-- A follow takes its ticket's lock, as a message or an attachment does (review of
-- followers and merges, issue 14).
--
-- ticket_followers took no lock on its ticket (its foreign key's KEY SHARE does not
-- conflict with a merge's FOR NO KEY UPDATE): POST /tickets/{id}/followers on a merged
-- ticket answered 201, the follower watching a ticket closed for good while the
-- conversation went on at its target, and a follow committed while a merge ran, after
-- the merge had copied the followers, stayed on the source alone. Now a follow locks its
-- ticket first (private.lock_parent_ticket, the messages' and attachments' lock): it waits
-- for a merge under way, and a merged ticket refuses it with 409 `ticket_merged` naming
-- the target (to whoever may see the ticket), a deleted one with 409 `ticket_deleted`.
create trigger ticket_parent_lock before insert on public.ticket_followers
  for each row execute function private.lock_parent_ticket();
