-- Two more per-row helpers in PL/pgSQL (issue 14: per-row trigger cost, after
-- 20261205160000_row_trigger_helpers_planned_once.sql, which gives the reason: a SQL
-- function with its own search_path is parsed and planned again on every call).
-- * private.usage_period: every quota count (private.use_quota), so every ticket created
--   and every call's minutes.
-- * private.duration_bucket: the statistics of every ticket answered or resolved, twice
--   when its old and new times both count.
-- Same bodies, same volatility; measured in tests/bench/ticket-triggers.bench.ts (README).

-- Redefined (20261202071000_usage_quotas.sql): PL/pgSQL, the same period.
create or replace function private.usage_period(p_metric text) returns date
language plpgsql stable
set search_path = ''
as $$
begin
  return case when p_metric in ('tickets_per_month', 'call_minutes')
    then date_trunc('month', now() at time zone 'UTC')::date else date '1970-01-01' end;
end;
$$;

-- Redefined (20261126101400_ticket_statistics.sql): PL/pgSQL, the same bucket.
create or replace function private.duration_bucket(p_seconds double precision) returns int
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
  return floor(ln(greatest(p_seconds, 1)) / ln(1.05))::int;
end;
$$;
