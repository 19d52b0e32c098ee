-- Realtime sends no delete events (review of isolation on the direct path, issue 14).
--
-- Supabase Realtime applies a table's select policy to the rows of insert and update
-- events, not to deletes: there is no row left to check it against, so a delete's event
-- (its old record's primary key) goes to every subscriber of the table, whatever their
-- tenant, and a subscription's filter does not hold it back. Tickets, messages, events,
-- notifications and calls are published, and their keys are (tenant_id, id): any signed-in
-- user of any tenant learned other tenants' ids and when their people deleted
-- notifications, calls or messages, or when a tenant was purged. The publication now
-- carries inserts and updates only. Tickets and calls are deleted softly (an update,
-- which subscribers allowed to see the row receive); a client that deletes a row knows
-- it did. This is the publication's setting, for every table an operator adds to it too.

alter publication supabase_realtime set (publish = 'insert, update');
