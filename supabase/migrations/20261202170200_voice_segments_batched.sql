-- Transcript segments appended in batches (issue 14, speed). A provider that reports one
-- segment per event made one statement and one commit per segment: ~1,350 segments/s
-- across 50 calls, the function's and Postgres's CPU per event both spent mostly on the
-- statement itself. The function now coalesces concurrent segment events into one
-- statement (shared/batch.ts, as /route does), which needs each event's refusal as data
-- rather than an exception that would end the whole statement: this function answers an
-- event's outcome, or its error as Postgres raised it (SQLSTATE, message, detail,
-- constraint, column), which the function maps to the same response as when the event
-- is alone. Each event runs in its own subtransaction, so a refused one writes nothing
-- and stops no other. The batch locks its calls in one order (the function sorts the
-- events by tenant and call), so two batches cannot deadlock.
create function private.voice_call_segments_append_answer(p_tenant_id uuid, p_provider_call_id text, p_segments jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  r record;
  v_detail text;
  v_constraint text;
  v_column text;
begin
  select * into r from private.voice_call_segments_appended(p_tenant_id, p_provider_call_id, p_segments);
  return jsonb_build_object('applied', r.applied, 'call_id', r.call_id, 'status', r.status);
exception when others then
  get stacked diagnostics v_detail = pg_exception_detail, v_constraint = constraint_name, v_column = column_name;
  return jsonb_build_object('error', jsonb_strip_nulls(jsonb_build_object(
    'code', sqlstate, 'message', sqlerrm, 'detail', nullif(v_detail, ''),
    'constraint_name', nullif(v_constraint, ''), 'column_name', nullif(v_column, ''))));
end;
$$;
revoke all on function private.voice_call_segments_append_answer(uuid, text, jsonb) from public, anon, authenticated;
grant execute on function private.voice_call_segments_append_answer(uuid, text, jsonb) to service_role;
