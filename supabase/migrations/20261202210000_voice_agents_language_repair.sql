-- An agent's language tag written before 20261202200100 may be longer than the 35
-- characters its check now allows. That check was added NOT VALID, but Postgres checks
-- a row again whenever it is updated — including by the foreign key's `on delete set
-- null (knowledge_base_id)` — so deleting a knowledge base used by such an agent failed
-- on a constraint that names the language. Such tags are cut to their longest prefix of
-- whole subtags within 35 characters (a prefix of a well-formed tag is one: it names the
-- same language, less precisely), and the check is then validated, so no row escapes it.

update public.voice_agents
   set language = regexp_replace(left(language || '-', 36), '-[^-]*$', '')
 where char_length(language) > 35;

alter table public.voice_agents validate constraint voice_agents_language_check;
