-- An agent's tools written before 20261202180200 in a form the API refuses are mended, and
-- the check validated (review of the knowledge base, issue 14).
--
-- 20261202180200 added the strict tools check NOT VALID where such rows existed (a notice
-- asked for them to be corrected by hand). Postgres still checks a NOT VALID constraint
-- on every later update of a row — the knowledge base foreign key's `on delete set null`
-- included — so deleting a knowledge base one of those agents used failed (422 naming
-- voice_agents_llm_config_tools), as it did for long language tags until
-- 20261202210000. The tools become what the API would have read: each object in order,
-- an array's objects in its place (the nested form the lax check let through), anything
-- else left out, the first 50 kept. Then the check is validated, so no row escapes it.

with mended as (
  select a.tenant_id, a.id, coalesce((
    select jsonb_agg(k.tool order by k.n, k.m)
    from (
      select t.n, t.m, t.tool from (
        select e.n, 0::bigint as m, e.el as tool
        from jsonb_array_elements(a.llm_config -> 'tools') with ordinality e(el, n)
        where jsonb_typeof(e.el) = 'object'
        union all
        select e.n, i.m, i.el
        from jsonb_array_elements(a.llm_config -> 'tools') with ordinality e(el, n)
        cross join lateral jsonb_array_elements(case when jsonb_typeof(e.el) = 'array' then e.el else '[]'::jsonb end)
          with ordinality i(el, m)
        where jsonb_typeof(i.el) = 'object'
      ) t
      order by t.n, t.m
      limit 50
    ) k), '[]'::jsonb) as tools
  from public.voice_agents a
  where jsonb_typeof(a.llm_config -> 'tools') = 'array'
    and (jsonb_array_length(a.llm_config -> 'tools') > 50
         or jsonb_path_exists(a.llm_config -> 'tools', 'strict $[*] ? (@.type() != "object")'))
)
update public.voice_agents a
   set llm_config = jsonb_set(a.llm_config, '{tools}', m.tools)
  from mended m
 where a.tenant_id = m.tenant_id and a.id = m.id;

alter table public.voice_agents validate constraint voice_agents_llm_config_tools;
