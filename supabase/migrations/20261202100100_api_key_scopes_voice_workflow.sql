-- API-key scopes for the voice API and the ticket workflow's newer routes (issue 15).
-- The voice routes took no key until now; customers:read/write and calls:write were on
-- the allow-list waiting for them. New: calls:read (calls and transcripts),
-- agents:read/agents:write (voice agents), knowledge:read/knowledge:write (knowledge
-- bases and their documents), workflow:manage (creating, changing and deleting canned
-- responses and macros; reading them is tickets:read, applying a macro tickets:write).
-- voice:route stays on the list, unused by any route: the provider's routes take the
-- telephony credential, not a tenant's key.
alter table public.api_keys drop constraint api_keys_scopes_check;
alter table public.api_keys add constraint api_keys_scopes_check check (
  cardinality(scopes) between 1 and 20
  and scopes <@ array['tickets:read', 'tickets:write', 'customers:read', 'customers:write', 'calls:read', 'calls:write',
                      'voice:route', 'webhooks:manage', 'teams:read', 'members:read', 'audit:read',
                      'agents:read', 'agents:write', 'knowledge:read', 'knowledge:write', 'workflow:manage']::text[]);
