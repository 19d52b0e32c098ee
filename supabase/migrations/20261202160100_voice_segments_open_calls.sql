-- A call's transcript is final once the call has ended (issue 14 review). Staff could
-- append segments to a completed, failed or missed call through the table (PostgREST),
-- rewriting what a finished call said after the fact; the provider's path already took
-- nothing for an ended call (private.voice_call_segments_appended). Agents still add
-- segments to a call that is ringing or in progress (a call they log by hand).
drop policy voice_call_segments_insert on public.voice_call_segments;
create policy voice_call_segments_insert on public.voice_call_segments for insert to authenticated
  with check (
    (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()))
    and exists (select 1 from public.voice_calls c
                where c.tenant_id = voice_call_segments.tenant_id and c.id = voice_call_segments.call_id
                  and c.status in ('ringing', 'in_progress')));
