-- An agent's tools are what the API takes (issue 14 review): at most 50, each a JSON
-- object (LlmConfigSchema). The table only checked that `tools` was an array, so a write
-- through PostgREST could store `[1, "x"]` or a thousand tools, which the API then
-- answered against its own document and /route handed to the telephony provider.
-- (Each tool's 16 KB is the API's; the whole configuration's 64 KB stays the table's.)
alter table public.voice_agents add constraint voice_agents_llm_config_tools
  check (case when jsonb_typeof(llm_config -> 'tools') = 'array'
              then jsonb_array_length(llm_config -> 'tools') <= 50
                   and not jsonb_path_exists(llm_config -> 'tools', '$[*] ? (@.type() != "object")')
              else true end);
