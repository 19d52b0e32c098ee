-- An agent's LLM configuration holds only the settings the platform knows (issue 14
-- review): model, system_prompt, temperature, tools. The function refused others by name
-- (422 llm_config.<key>), but a write through the table (PostgREST) kept them, and the
-- API then answered configurations its own document forbids.
alter table public.voice_agents add constraint voice_agents_llm_config_known_keys
  check ((llm_config - array['model', 'system_prompt', 'temperature', 'tools']) = '{}'::jsonb);
