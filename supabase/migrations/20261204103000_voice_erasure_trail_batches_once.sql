-- The erasure's trail job, after the third review (20261204102000): a batch that
-- committed could still run again. Its job is completed by the runner's next claim, in
-- another transaction; a lease lost in between (a worker stalled past its two minutes)
-- let another worker claim the same job and run the batch a second time: the last batch
-- sent `customer.erasure_completed` twice (the second with fewer entries, those already
-- redacted), and a worker committing after its lease ran out could rewind the next
-- batch's job to its own older payload.
--
-- A batch now runs through private.voice_erasure_trail_batch, which holds the job's lease
-- for its transaction (private.job_lease_held: a worker whose lease ran out records
-- nothing) and marks the job's payload `committed` with the batch: a job claimed again
-- after its batch committed does nothing and is completed. The step itself is unchanged
-- and no longer callable on its own. (20261204101000 and 20261204102000 never ran
-- outside development, so no job of theirs is waiting.)

create function private.voice_erasure_trail_batch(p_job_id bigint, p_worker text)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_payload jsonb;
begin
  if not private.job_lease_held(p_job_id, p_worker) then
    return null; -- another worker owns the job now
  end if;
  select j.payload into v_payload from private.jobs j where j.id = p_job_id;
  if coalesce((v_payload ->> 'committed')::boolean, false) then
    return v_payload; -- its batch committed before: nothing more to do
  end if;
  v_payload := private.voice_erasure_trail_step(v_payload);
  update private.jobs j set payload = v_payload || '{"committed": true}' where j.id = p_job_id;
  return v_payload;
end;
$$;
revoke all on function private.voice_erasure_trail_batch(bigint, text) from public, anon, authenticated;
grant execute on function private.voice_erasure_trail_batch(bigint, text) to service_role;
comment on function private.voice_erasure_trail_batch(bigint, text) is
  'One batch of a customer erasure''s audit trail job, at most once per job (voice-erasure-trail, 20261204103000).';

revoke execute on function private.voice_erasure_trail_step(jsonb) from service_role;
