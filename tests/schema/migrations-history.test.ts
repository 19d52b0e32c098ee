// The migrations are a history of concerns (issue 10): one file per concern, in
// dependency order, each function created once, audit attached by one function that
// reads keys from the catalog — and a migration that has landed is never edited again.
//
// Adding a migration (a schema change):
//   1. a NEW file in supabase/migrations/, named <UTC timestamp>_<concern>.sql, sorting
//      after every file there — never an edit of a landed one;
//   2. its checksum in tests/schema/landed-migrations.json (this suite prints the line to
//      add), appended at the end: the file has landed once that line is on main;
//   3. `npm run gen:types` (types/database.ts is checked for drift);
//   4. its tables: `select private.enable_audit('public.<table>');` next to each new table
//      in public (the tenant column and the key are read from the catalog).
// Changing a function a landed migration created: `create or replace function` in the new
// file, and the redefinition listed in REDEFINITIONS below with its reason. Nothing else
// may create a function twice (nor drop and re-create it), so a duplicate cannot slip in
// unnoticed. The one-time rewrite of issue 10 started the history with none.
// Proving a rewrite changes nothing: `node scripts/catalog-snapshot.mjs --compare <ref>`.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../../scripts/stack.mjs';
import { freshDatabase, type TestDatabase, UNAUDITED_TABLES } from '../helpers/db.ts';

/** Functions a later migration redefines on purpose: 'schema.name' → the redefining files,
 *  each with the reason in a comment. */
const REDEFINITIONS: Record<string, string[]> = {
  // /route's reason for a number only parked agents have: their tenant's state first.
  'private.voice_route_answer': ['20261206144000_route_reasons_for_parked_agents.sql'],
  // ... and through a tenant's API key (review of the voice product).
  'private.voice_route_in_tenant': ['20261207212000_keyed_route_reasons_for_parked_agents.sql'],
  // A target met late marks only; told after the update, and an answer during a wait judged
  // by when it began (review of 20261207221000).
  'private.tickets_sla_met_late': ['20261207223000_targets_met_late_told_after_their_update.sql'],
  // A lease renewal skips a job row held elsewhere instead of failing whole (stop 57's limit).
  'private.renew_job_leases': ['20261207220000_lease_renewal_skips_a_held_row.sql'],
  // A missed next response stays one breach across priority and team changes (review of SLA).
  'private.tickets_sla_next_response': ['20261207215000_next_response_breached_once.sql'],
  // Supabase tokens name no tenant for someone in several who chose none.
  'private.custom_access_token_hook': [
    '20261206147000_supabase_tokens_choose_no_tenant.sql',
    '20261208100000_slugs_named_in_any_case.sql', // the choice's slug in any case
  ],
  // X-Tenant-Id's slug in any case.
  'private.request_tenant_id': ['20261208100000_slugs_named_in_any_case.sql'],
  // An invitation waits for its sender's disabling or loss of the platform role.
  'private.invitation_sender_still_admin': ['20261206148000_invitations_wait_for_their_sender.sql'],
  // A timed-out call takes its late answer.
  // ... and so does a call the provider ended failed before the answer arrived (review),
  // when the answer says when (review of this stop's migrations).
  'private.voice_call_answered': [
    '20261206155000_late_answer_of_a_timed_out_call.sql',
    '20261207144000_answers_after_the_end.sql',
    '20261207149000_review_of_this_stops_migrations.sql',
    '20261208105000_inferred_answers_give_way.sql', // a guessed answer gives way to the provider's
  ],
  // Manual calls still name a parked agent; a purge keeps its tenant's entries without
  // their images (review of this stop's migrations).
  'private.voice_call_needs_active_agent': ['20261207149000_review_of_this_stops_migrations.sql'],
  'private.tenant_purge_trail': ['20261207149000_review_of_this_stops_migrations.sql'],
  // Only admins who can sign in count toward the last admin.
  // Later: the refusal names itself (409 last_admin).
  // The daily prune deletes in batches (and never a delivery being sent again).
  'private.prune_webhook_history': ['20261207170000_prune_in_batches.sql'],
  'private.prune_dead_jobs': [
    '20261207170000_prune_in_batches.sql',
    '20261208104000_dead_erasure_jobs_are_kept.sql', // the record of an erasure left undone stays
  ],
  'private.prune_voice_call_tombstones': ['20261207170000_prune_in_batches.sql'],
  'private.prune_idempotency_keys': [
    '20261207170000_prune_in_batches.sql',
    '20261208106000_idempotency_prune_matches_the_whole_key.sql', // an API key's own keys stay
  ],
  // Drift is recorded against the ids and credentials checked (dropped: new arguments).
  'private.record_service_drift': ['20261207171000_drift_recorded_against_what_was_checked.sql'],
  // A login another tenant keeps as a former owner's counts as used.
  'private.partner_id_users': ['20261207174000_partner_logins_former_owners_count.sql'],
  // A leaving agent's routed ticket is unassigned with the routing, so its team assigns it.
  'private.route_tickets_of_leaving_agent': ['20261207209000_leaving_agents_tickets_assigned_admins_stay.sql'],
  // A removal racing an acceptance is 503 retry (review of members and invitations).
  'private.drop_invitations_of_removed_member': ['20261207207000_suspended_tenants_remove_members.sql'],
  // A hold for a failure hook is bounded and never of a superseded job (review).
  'private.hold_job_for_its_hook': ['20261207175000_held_jobs_bounded.sql'],
  // A long word's cut moves back over whole clusters (review).
  // ... at most eight clusters back (review).
  'private.kb_cluster_cut': ['20261207180000_kb_cuts_over_whole_clusters.sql', '20261207182000_kb_cluster_cut_bounded.sql'],
  // An invitation that cannot be accepted says why to its addressee (expired, tenant not active).
  'private.accept_invitation': ['20261207183000_invitation_refusals_named.sql'],
  // A team a macro or automation rule names is kept too.
  'private.team_delete_guard': ['20261207186000_team_actions_name_a_team.sql', '20261207196000_team_guard_service_lock_assign_review.sql'],
  // The tenant-state check of a service being enabled is silent for outsiders (the attack suites' oracle).
  'private.service_wanted_in_an_active_tenant': [
    '20261207194000_service_tenant_check_silent_for_outsiders.sql',
    '20261207196000_team_guard_service_lock_assign_review.sql', // NOWAIT on an update (lock order)
  ],
  // Checks on team references, silent for callers who may not make the write (oracles).
  'private.actions_name_existing_teams': ['20261207195000_team_checks_silent_for_outsiders.sql'],
  'private.team_member_is_staff': ['20261207195000_team_checks_silent_for_outsiders.sql'],
  // A demotion also clears the person's team leads.
  'private.drop_teams_on_demotion': ['20261207198000_team_leads_are_staff.sql'],
  'private.keep_last_admin': ['20261206142000_admins_who_can_act.sql', '20261207165000_last_admin_refusal_named.sql'],
  // A merged ticket's followers follow the ticket it was merged into.
  // ... and the target takes the source's first response (review).
  'private.merge_tickets': [
    '20261206058000_merged_ticket_followers_move.sql',
    '20261206063000_second_round_review.sql',
    '20261206162000_merged_tickets_answered_not_resolved.sql',
    '20261207105000_settled_tickets_owe_no_reply.sql', // the source's reply owed moves to the target
    '20261207130000_merges_and_templates_review.sql', // a ticket with no requester is merged with no other
    '20261208132000_merges_carry_the_customer_reply_whole.sql', // a pending target opened, a pending source's wait carried
  ],
  // After review: failed services that made nothing hold no tenant back; only the plan's
  // pauses are the plan's to resume; a rotation's overlap is only ever shortened.
  'private.tenant_delete_after_services': [
    '20261206063000_second_round_review.sql',
    '20261206065000_third_round_review.sql',
    '20261208116000_purges_wait_for_provisioning.sql', // waits for a job holding a service
  ],
  'private.services_follow_the_plan': ['20261206063000_second_round_review.sql', '20261206065000_third_round_review.sql'],
  'private.webhook_endpoint_secret_rotated': ['20261206063000_second_round_review.sql'],
  // A deleted tenant's partner spaces are suspended during the removal's grace period.
  // ... a removed space being brought back marked provisioning; only a removed one waits (issue 14 review).
  // ... the grace period's suspension does not mark the space provisioning (its failure looped).
  // ... the partner accounts' owner is the oldest admin whose account is active.
  'private.provisioning_context': [
    '20261206052000_deleted_tenants_suspended_during_grace.sql',
    '20261207101000_provisioning_in_flight_not_taken_as_settled.sql',
    '20261207161000_grace_suspension_failure_not_requeued.sql',
    '20261207162000_partner_owner_is_an_active_admin.sql',
  ],
  // ... a resume asked for, or a space up or failed during the grace period: suspended now (issue 14 review).
  // ... failed only from provisioning (a job bringing it up), not the suspension's own failure.
  'private.tenant_services_enqueue': [
    '20261206052000_deleted_tenants_suspended_during_grace.sql',
    '20261207101000_provisioning_in_flight_not_taken_as_settled.sql',
    '20261207161000_grace_suspension_failure_not_requeued.sql',
  ],
  // The stored size moves the quota through the table's own count; a file past 50 MiB is a refusal.
  'private.attachment_size_as_stored': ['20261206046000_stored_sizes_review.sql', '20261206056000_empty_uploads_charged_as_stored.sql'],
  // An uploaded attachment counts the bytes the storage holds (hosted Storage's signed
  // upload URLs take any size): the check releases one the plan has no room for.
  'private.settle_pending_attachment': ['20261206044000_attachment_sizes_as_stored.sql'],
  // A person is retired with their last login, and back when they sign up again.
  'private.retire_identity': [
    '20261206043000_people_retired_with_their_last_login.sql',
    '20261206045000_lifecycle_review.sql',
    '20261206046000_stored_sizes_review.sql',
    // ... and their invitations go with them (review of the identity sync, issue 14).
    '20261207211000_retired_users_invitations_go.sql',
  ],
  // ... back only with no login left (a platform admin's lockout outlasts a profile edit);
  // an address another person holds is not taken (issue 14 review).
  // settings.removal_grace_days is the platform admins' (issue 14 review).
  'private.guard_tenant_update': ['20261207104000_removal_grace_is_the_platforms.sql'],
  'private.sync_auth_user': [
    '20261206043000_people_retired_with_their_last_login.sql',
    '20261207102000_lockouts_outlast_profile_edits.sql',
  ],
  // A deleted tenant's deliveries still queued are ended unsent (issue 15, webhooks).
  // ... and a type the endpoint no longer subscribes to (review).
  'private.webhook_delivery_withheld': [
    '20261206041000_inactive_tenants_left_alone.sql',
    '20261206045000_lifecycle_review.sql',
    '20261206164000_deliveries_follow_the_subscription.sql',
  ],
  // A person disabled on the platform is given no tickets (issue 11, routing).
  // ... an agent whose membership is being changed is passed over, not waited for (review of teams).
  'private.auto_assignee': [
    '20261206039000_disabled_people_not_assigned.sql',
    '20261207187000_auto_pick_skips_members_being_changed.sql',
  ],
  // ... and waits for a role change of the assignee under way (review).
  'private.check_ticket_assignee': ['20261206039000_disabled_people_not_assigned.sql', '20261206161000_assignments_and_keys_wait_for_role_changes.sql'],
  // A platform user can be deleted: their API keys lose their creator, and are revoked.
  'private.api_key_guard': ['20261206038000_user_deletion.sql'],
  // After review of the bounds added on 2026-12-06: a lock timeout ends a batch of
  // appends; a pending-uploads refusal says when enough room frees.
  'private.voice_call_segments_append_outcome': ['20261206037000_bounds_review.sql'],
  'private.check_customer_upload': [
    '20261206037000_bounds_review.sql',
    '20261207205000_customer_pending_uploads_counted.sql', // bounded in number too
  ],
  // An assignment made inside a customer's own insert adds the assignee's follow as
  // nobody's, not the customer's (issue 16, customer followers).
  'private.tickets_assignee_follows': ['20261206035000_customer_followers_customers_only.sql'],
  // Per-row trigger helpers in PL/pgSQL, planned once a session; the statistics' cells
  // computed in their caller's statement (issue 14, per-row trigger cost).
  // ... and a merged ticket's times are not counted (review).
  'private.ticket_stats_change': [
    '20261205160000_row_trigger_helpers_planned_once.sql',
    '20261206162000_merged_tickets_answered_not_resolved.sql',
  ],
  'private.rebuild_ticket_stats': ['20261206162000_merged_tickets_answered_not_resolved.sql'],
  'private.ticket_stats_maintain': ['20261206162000_merged_tickets_answered_not_resolved.sql'], // a merge counts
  'private.is_member': ['20261205160000_row_trigger_helpers_planned_once.sql'],
  'private.api_timestamp': ['20261205160000_row_trigger_helpers_planned_once.sql'],
  'private.webhook_tenant_lock_key': ['20261205160000_row_trigger_helpers_planned_once.sql'],
  'private.job_adders_lock_key': ['20261205160000_row_trigger_helpers_planned_once.sql'],
  'private.usage_period': ['20261205180000_quota_and_bucket_helpers_planned_once.sql'],
  'private.duration_bucket': ['20261205180000_quota_and_bucket_helpers_planned_once.sql'],
  // Knowledge search checks the caller's standing once, then uses the GIN indexes (issue 14).
  'private.kb_search': ['20261202090500_voice_search_under_rls.sql'],
  // Outsiders get no rows at once, without reading the tenant (issue 12, search timing).
  'private.ticket_search_candidates': ['20261202060100_ticket_search_outsiders.sql'],
  // The rate-limit count without a subtransaction when no header names a tenant, and
  // one limits lookup (issue 15).
  // The api_keys (then voice_agents) count among the usage metrics (issue 15).
  'private.tenant_usage': ['20261202091000_api_key_quota.sql', '20261202100000_voice_plan.sql'],
  // No outbox row for a tenant whose plan lacks outbound_webhooks (issue 15).
  // ... and a bounded number of locks per transaction: the tenant's outbox lock past 64 keys (issue 14).
  // ... and each event asks once who wants it; the tenant's lock key by its function (issue 14).
  'private.emit_webhook_event': [
    '20261202100300_webhooks_off_plan.sql',
    '20261205100000_webhook_outbox_bounded_locks.sql',
    '20261205120000_webhook_events_asked_once.sql',
  ],
  // add_job's key and queue locks bounded per transaction: the tenant's job adders' lock past 64 (issue 14).
  // ... then the key's, the queue's, then the tenant's lock; a hand-over's lock counted (issue 14 review).
  // ... past the bound to commit; a running job's queue locked before the tenant's (issue 14 review).
  'private.add_job': [
    '20261205110000_job_adders_bounded_locks.sql',
    '20261205140000_job_adders_lock_order.sql',
    '20261205150000_job_adders_bulk_sticky.sql',
    '20261207100000_superseded_jobs_give_way.sql', // the handed-over job superseded; a pending job keeps its queue
  ],
  // Re-enabling an endpoint takes the tenant's outbox lock exclusively (issue 14).
  // ... and its jobs in one statement, taking no job lock (issue 14 review).
  // ... its upsert leaving a running job alone, as add_job does (issue 14 review).
  'private.webhook_endpoint_requeue': [
    '20261205100000_webhook_outbox_bounded_locks.sql',
    '20261205120000_webhook_events_asked_once.sql',
    '20261205140000_job_adders_lock_order.sql',
    '20261205150000_job_adders_bulk_sticky.sql',
    '20261206145000_requeue_keeps_delivery_order.sql', // new jobs in delivery order
    '20261207100000_superseded_jobs_give_way.sql', // the delivery job being sent superseded
  ],
  // A superseded job's failure ends it, its Retry-After holding back its successor (issue 14 review).
  'private.fail_job': ['20261207100000_superseded_jobs_give_way.sql'],
  // A number of a tenant whose plan lacks voice does not route (issue 15); then the
  // whole answer in one statement (issue 14, /route speed).
  // The answer as data for batched lookups, raised from there (issue 14).
  'private.voice_route': [
    '20261202100000_voice_plan.sql',
    '20261202150000_voice_route_one_statement.sql',
    '20261202150200_voice_route_batched.sql',
  ],
  // A write the caller's own window refuses spends nothing of the tenant's (20261206050000).
  'private.rate_limit_hit': [
    '20261202074000_rate_limit_speed.sql',
    '20261202080300_rate_limit_per_api_key.sql',
    '20261206050000_rate_limit_refusals_spend_only_the_caller.sql',
    '20261207113000_rate_limit_windows_move_forward.sql', // a late write does not set the window back
    // A write the route refuses its caller spends only the caller's window (dropped: new arguments).
    '20261207199000_rate_limit_refused_callers_spend_only_their_own.sql',
    // The verdict names the tenant's window it spent, given back when the request fails.
    '20261207225000_failed_writes_give_back_the_tenants_hit.sql',
  ],
  // A late write does not set the window back (issue 14 review).
  'private.rate_limit_key_read': ['20261207113000_rate_limit_windows_move_forward.sql'],
  // Sending a failed delivery again is audited (issue 14 review).
  'private.retry_webhook_delivery': ['20261207114000_delivery_retries_audited.sql'],
  // A reply is not queued for a ticket of a former Chatwoot account, and names its own.
  // A key-made endpoint lapses with its key's admin too (review).
  'private.webhook_endpoint_key_lapsed': [
    '20261207147000_key_made_endpoints_end_with_the_keys_admin.sql',
    '20261208114000_key_shown_secrets_rotated_before_enabling.sql', // the key shown the secret ends it too
  ],
  // A rotation that keeps the old secret signing keeps the ended key remembered (review).
  'private.webhook_endpoint_secret_key': ['20261208120000_rotations_with_overlap_keep_the_key_shown.sql'],
  // ... and the endpoints whose secret the revoked key was shown (review of outbound webhooks).
  'private.webhook_endpoints_of_revoked_key': ['20261208114000_key_shown_secrets_rotated_before_enabling.sql'],
  'private.queue_chatwoot_reply': [
    '20261207120000_chatwoot_links_end_with_their_account.sql',
    '20261207146000_followers_replies_are_the_customers.sql', // staff's messages only
  ],
  // The call events ask the tenant's state: no new call for a suspended one, nothing for a
  // deleted one; a deleted tenant has no knowledge (issue 14); a new call answers its
  // status after the events held for it (issue 14, early events).
  // ... and its delete of the calls marked, so the calls' delete trigger leaves their
  // events and notices to it (issue 14, table deletes).
  'private.voice_customer_erase': [
    '20261204101000_voice_customer_erasure_trail_job.sql',
    '20261204102000_voice_customer_erasure_review.sql',
    '20261204120000_voice_call_table_deletes.sql',
  ],
  // ... and a former call's call.deleted kept (issue 14, table deletes' notices).
  // ... and a job for deleted calls (no customer) that redacts their entries (review of the trail).
  'private.voice_erasure_trail_step': [
    '20261204102000_voice_customer_erasure_review.sql',
    '20261204121000_voice_call_deleted_notices.sql',
    '20261208127000_deleted_calls_leave_the_trail.sql',
    // ... which reads a deletion's calls' entries only back to their first (review).
    '20261208129000_trail_jobs_bounded_and_purged_trails_read.sql',
  ],
  'private.voice_calls_deleted_trail': ['20261208129000_trail_jobs_bounded_and_purged_trails_read.sql'],
  'private.voice_call_started': [
    '20261202160000_voice_events_tenant_state.sql',
    '20261203140000_voice_early_events.sql',
    '20261204100000_voice_customer_erasure.sql',
    '20261204110000_voice_call_tombstones.sql',
  ],
  // Early events, after review: bounded per call and in bytes, counted in turns per tenant,
  // under the claims they came with, a held segment answering at its own time (issue 14);
  // an event for a deleted call refused rather than held (issue 14, tombstones).
  'private.voice_call_event_held': [
    '20261203160000_voice_early_events_review.sql',
    '20261204110000_voice_call_tombstones.sql',
    '20261204111000_voice_call_tombstones_review.sql',
    '20261204112000_voice_call_delete.sql',
  ],
  // Tombstones, after review: by the provider call id's hash (issue 14).
  'private.voice_calls_tombstoned': ['20261204111000_voice_call_tombstones_review.sql'],
  // The route's delete leaves the events and call.deleted to the calls' delete trigger,
  // and deletes people's own (manual:) calls in any state (issue 14, table deletes).
  // ... and its 409 names the call (details.call_ids) as the table's does (issue 14).
  'private.voice_call_delete': ['20261204120000_voice_call_table_deletes.sql', '20261205130000_voice_call_delete_names_call.sql'],
  // A large delete's notices by jobs, past 500 locks in its transaction; then all at
  // once, set-based, taking no lock (issue 14).
  'private.voice_calls_deleted': ['20261204121000_voice_call_deleted_notices.sql', '20261204122000_voice_call_deleted_at_once.sql'],
  // A statement's events written by one helper, taking no lock (issue 14).
  'private.voice_calls_deleted_notices': ['20261204123000_webhook_events_unlocked.sql'],
  // ... payloads built only for tenants that want the type (issue 14, imports' speed).
  // ... and written by private.write_webhook_events, having asked once (issue 14).
  'private.voice_customers_created': [
    '20261204123000_webhook_events_unlocked.sql',
    '20261204124000_webhook_events_wanted_first.sql',
    '20261205120000_webhook_events_asked_once.sql',
  ],
  // ... and in PL/pgSQL, its plans kept: called once per call by voice_webhook_outbox (issue 14).
  // ... and asking once per tenant, writing through private.write_webhook_events (issue 14).
  'private.emit_webhook_events_unlocked': [
    '20261204124000_webhook_events_wanted_first.sql',
    '20261205090000_voice_call_events_unlocked.sql',
    '20261205120000_webhook_events_asked_once.sql',
  ],
  'private.webhook_type_wanted': ['20261205090000_voice_call_events_unlocked.sql', '20261206041000_inactive_tenants_left_alone.sql'],
  'private.voice_call_refuse_deleted': ['20261204111000_voice_call_tombstones_review.sql'],
  // ... events held for a call not started answer it at their arrival only while it rings.
  'private.voice_call_apply_early_events': [
    '20261203160000_voice_early_events_review.sql',
    '20261207184000_held_events_answer_only_a_ringing_call.sql',
  ],
  // Two identical recording-upload requests at once: the second answers the object the
  // call holds rather than 409 (issue 14, call recordings).
  // ... and every URL signed for a call moves its other objects' delete jobs past its
  // expiry (issue 14, call recordings).
  'private.voice_call_recording_set': [
    '20261203253000_storage_objects_erased_review.sql',
    '20261203258000_voice_recording_urls_outlive_jobs.sql',
  ],
  // The tenant's consent rule for recordings (issue 14, call recordings).
  // ... and a deleted call's recording is 410 call_deleted (issue 14, tombstones).
  'private.voice_call_recording_of': ['20261203254000_voice_recording_consent.sql', '20261204111000_voice_call_tombstones_review.sql'],
  // A deleted call's storage-delete jobs get 1,000 attempts (issue 14, call recordings).
  'private.voice_call_recordings_erased': ['20261203255000_storage_delete_jobs_review.sql'],
  // The wait of a call's other objects' jobs finds them by key, not by scanning the queue
  // (issue 14, call recordings).
  // ... and by the queue a released key left, with expired leases too.
  'private.voice_call_recording_jobs_wait': [
    '20261203259000_voice_recording_jobs_by_key.sql',
    '20261203260000_voice_recording_jobs_released_keys.sql',
  ],
  // ... and a timed-out call takes its late segments and its real end once (issue 14,
  // stale calls).
  'private.voice_call_segments_appended': [
    '20261202160000_voice_events_tenant_state.sql',
    '20261202170000_voice_stale_calls.sql',
  ],
  // ... and a timed-out call's real end without a time is its last event, late segments
  // included (issue 14 review).
  'private.voice_call_ended': [
    '20261202160000_voice_events_tenant_state.sql',
    '20261202170000_voice_stale_calls.sql',
    '20261202170300_voice_stale_calls_review.sql',
    '20261203110000_voice_sweep_fairness.sql',
    '20261208105000_inferred_answers_give_way.sql', // a ringing call ended completed: answered by a guess
  ],
  // ... and with the query's embedding (issue 14, embeddings through the API).
  'private.kb_search_for_call': ['20261202160000_voice_events_tenant_state.sql', '20261203240000_kb_embeddings_api.sql'],
  // Writes to one document queue, numbers checked exactly (issue 14 review).
  // ... and each write recorded on its document, audited there (issue 14, embeddings audited);
  // ... and that recorded by triggers on the chunks, for every writer (issue 14 review).
  'private.kb_set_embeddings': [
    '20261203241000_kb_embeddings_review.sql',
    '20261204090000_kb_embeddings_audited.sql',
    '20261204091000_kb_embeddings_counted_on_chunks.sql',
  ],
  // The same chunks, ranked as (id, score) and read after the limit, with a custom plan
  // per call (issue 14, knowledge search speed).
  // ... and a configuration's query with nothing to look for (negations only) matches nothing.
  // ... and a query of one word ranks only the candidates its postings give, each a match (issue 14, broad words).
  // ... and by embedding (hosted): the HNSW scan goes on past other tenants' chunks, a
  // wrong embedding is a 22023 (issue 14, tests/deploy/hosted-vector.test.ts); after
  // review, in relaxed order sorted again, zero and overflowing vectors refused.
  'private.kb_search_in_tenant': [
    '20261202170100_kb_search_late_rows.sql',
    '20261202200100_voice_knowledge_review.sql',
    '20261203150000_kb_postings.sql',
    '20261203170000_kb_postings_review.sql',
    '20261203180000_kb_postings_shared.sql',
    '20261203190000_kb_vector_search_hosted.sql',
    '20261203200000_kb_vector_search_review.sql',
    // ... and a query embedding too near zero for single precision refused (issue 14
    // review); its skipping pgvector's library load when the setting could be read was
    // unsafe for a placeholder setting, and is undone.
    '20261203243000_kb_vector_search_checks.sql',
    '20261203244000_kb_vector_search_load_first.sql',
    // ... and a query of words OR'd ranks only its candidates: each word's first k and the
    // chunks with two or more of them (issue 14, knowledge search speed).
    '20261203270000_kb_search_any_of_words.sql',
    // ... and those chunks ranked as GIN finds them, not read again by id.
    '20261203271000_kb_search_any_of_words_rows.sql',
  ],
  // A tenant's plan is not told to API callers outside it (issues 14 and 15).
  'private.assert_feature': ['20261203234000_plan_checks_for_outsiders.sql'],
  // Each document against knowledge_documents too (issue 14, knowledge quotas after review).
  'private.count_knowledge': ['20261203220000_knowledge_quotas_review.sql'],
  // One posting for a lexeme both configurations give alike (issue 14, postings' size).
  'private.kb_chunk_postings': ['20261203180000_kb_postings_shared.sql'],
  // Postings after review: a chunk written again keeps its postings; the backslash as chr(92) (issue 14).
  'private.kb_chunks_postings': ['20261203170000_kb_postings_review.sql'],
  'private.tsquery_single_lexeme': ['20261203170000_kb_postings_review.sql'],
  // Chunking in one pass, cutting between words, after a line break when it can (issue 14 review).
  // ... and a word longer than a chunk after a sentence of its script, never before a mark.
  'private.kb_chunk_text': [
    '20261202200100_voice_knowledge_review.sql',
    '20261207172000_kb_long_words_cut_between_characters.sql',
    // ... the marks before a cut found in one match, every cut checked (review).
    '20261207176000_kb_cuts_in_one_match.sql',
  ],
  // The provider's end replaces the stale-call sweep's provisional end, and is announced
  // again (issue 14).
  // ... and after review: only reachable ends, an unanswered call stays so, call.ended
  // marked provisional or replacing; the sweep per call, re-checked under its lock.
  // ... and times that hold together: a start not ahead of now, an end not before the start
  // or the answer, 0 seconds for a call never answered (issue 14 review).
  'private.voice_call_status': [
    '20261202170000_voice_stale_calls.sql',
    '20261202170300_voice_stale_calls_review.sql',
    '20261202200000_voice_calls_review.sql',
    // ... and a call failing while ringing was never answered (review).
    '20261206160000_ringing_call_that_fails_never_answered.sql',
    '20261208105000_inferred_answers_give_way.sql', // the answers it stamps are guesses
  ],
  // People may not write the status of a provider's call the sweep ended (issue 14 review).
  // ... and people write the times of their manual calls only; a tenant API key's call
  // events are the machine's (issue 14 review).
  // ... and an answer once given is never cleared; logging a manual call is an event for
  // the stale-call sweep (issue 14 review).
  'private.voice_call_people_rules': [
    '20261202200000_voice_calls_review.sql',
    '20261203080100_voice_call_times_and_key_events.sql',
    '20261203080400_voice_manual_calls_review.sql',
  ],
  'private.voice_call_last_event_at': ['20261203080400_voice_manual_calls_review.sql'],
  // No ticket lock for an API caller outside the ticket's tenant (issues 9 and 14).
  // ... and a merged ticket takes no new messages or attachments.
  'private.lock_parent_ticket': [
    '20261203236000_ticket_lock_for_outsiders.sql',
    '20261206149000_merged_tickets_take_no_messages.sql',
    '20261208112000_deleted_tickets_take_no_messages.sql', // people write to a deleted ticket once restored
  ],
  // ... and nothing for an API caller outside the call's tenant (issue 14).
  'private.voice_segment_people_rules': ['20261203080100_voice_call_times_and_key_events.sql', '20261203235000_segment_rules_for_outsiders.sql'],
  'private.voice_segment_call_open': ['20261203080100_voice_call_times_and_key_events.sql', '20261203235000_segment_rules_for_outsiders.sql'],
  // A linked call may follow its ticket into the ticket it was merged into (issue 14 review).
  // ... and the link cleared when its ticket is deleted (issue 14, review of the voice work).
  'private.voice_call_ticket_once': [
    '20261202200000_voice_calls_review.sql',
    '20261206014000_call_ticket_link_cleared_by_delete.sql',
    // The first link is to a ticket opened from the call (20261206057000), no other call's.
    '20261206057000_call_links_both_ways.sql',
    '20261206063000_second_round_review.sql',
  ],
  // ... and through the unlocked helper: the call's row orders its events (issue 14).
  'private.voice_webhook_outbox': [
    '20261202170000_voice_stale_calls.sql',
    '20261202170300_voice_stale_calls_review.sql',
    '20261205090000_voice_call_events_unlocked.sql',
    '20261205120000_webhook_events_asked_once.sql',
  ],
  // ... and tenants take turns, so one tenant's ancient calls hold up no other's (issue 14 review).
  // ... and each tenant gives a run at most its limit of candidates (issue 14 review).
  'private.run_voice_stale_call_sweep': [
    '20261202170300_voice_stale_calls_review.sql',
    '20261203110000_voice_sweep_fairness.sql',
    '20261203120000_voice_sweep_per_tenant.sql',
  ],
  // A tenant's customer searches only the transcripts of their own calls (issue 14 review).
  // ... and a query an index cannot look up (negations only) matches no call (issue 14 review).
  'private.voice_calls_matching': ['20261202180200_voice_customers_review.sql', '20261202200100_voice_knowledge_review.sql'],
  // An active agent moved to a new number claims it on the router: the voice feature (issue 14 review).
  'private.require_voice_feature': ['20261202190000_voice_numbers_held.sql'],
  // A call event naming no tenant is 404 unknown_tenant, not the plan's 403 (issue 14 review).
  'private.voice_event_tenant_status': ['20261202190400_voice_events_unknown_tenant.sql'],
  // Taking a free number needs the voice feature; a deleted tenant's number can be taken.
  // ... and nothing for an API caller outside the tenant: the policy refuses (issues 14, 15).
  // ... and a deleted tenant's number taken over with no read lock before (review: two claims deadlocked).
  'private.claim_voice_number': [
    '20261202190500_voice_numbers_review.sql',
    '20261203234000_plan_checks_for_outsiders.sql',
    '20261208128000_deleted_tenants_numbers_claimed_without_deadlock.sql',
  ],
  // Auto-assigns a ticket that gains a team with no assignee (issue 11 §4).
  // Later: a team's pick goes only to a ticket still unassigned, so an assignment made
  // while the hand-off waited for the team stays (issue 14, review of the tickets function).
  // And a pick made moot gives the agent's turn back.
  // A probe that gets through wakes the deliveries the breaker deferred.
  'private.webhook_endpoint_breaker_reset': ['20261206152000_probe_success_wakes_deferred_deliveries.sql'],
  // Later: defer_job waits for a reset in progress (its endpoint's row first).
  // A member's role change or removal reads the caller's membership NOWAIT, no tenant lock.
  // ... and PostgREST answers the busy refusal 503 too (PT503).
  'private.member_change_by_admin_in_office': [
    '20261207164000_member_changes_fail_fast_on_own_change.sql',
    '20261207178000_member_change_busy_is_503.sql',
  ],
  'private.defer_job': ['20261206152000_probe_success_wakes_deferred_deliveries.sql', '20261207160000_defer_job_waits_for_a_reset.sql'],
  // The assign-ticket job's unused pick gives the turn back, as hand_off_ticket's does.
  'private.auto_assign_ticket': [
    '20261206151000_assign_job_gives_the_turn_back.sql',
    '20261207109000_finished_tickets_take_no_pick.sql', // rechecked as it assigns
    '20261207193000_inactive_tenants_assign_nobody.sql', // nobody in a suspended or deleted tenant
    '20261207196000_team_guard_service_lock_assign_review.sql', // the tenant held in share mode
  ],
  'private.hand_off_ticket': [
    '20261201091000_department_routing.sql',
    '20261205204000_hand_off_keeps_concurrent_assignment.sql',
    '20261205214000_hand_off_returns_unused_turn.sql',
    // A finished or deleted ticket is nobody's turn, as on the direct path (20261206059000).
    '20261206059000_finished_tickets_take_no_turn.sql',
    '20261207109000_finished_tickets_take_no_pick.sql', // rechecked as it assigns
    '20261207231000_hand_offs_skip_tickets_deleted_meanwhile.sql', // not a ticket deleted meanwhile
    '20261207232000_hand_offs_read_the_deletion_first.sql', // read before the check
  ],
  // The row and occurred_at rendered as the API renders timestamps (issue 11 §6).
  'private.webhook_outbox': [
    '20261201093000_api_timestamps.sql',
    '20261201099100_outbox_listener_first.sql',
    '20261206038000_user_deletion.sql',
    '20261206045000_lifecycle_review.sql',
    // A status and an assignee changed at once: ticket.assigned too (20261206060000).
    '20261206060000_status_and_assignee_both_told.sql',
  ],
  // The same answers from the caller's context, read once per transaction (issue 12).
  'private.current_user_id': ['20261201094000_caller_context.sql'],
  'private.is_platform_admin': ['20261201094000_caller_context.sql'],
  'private.tenant_ids': ['20261201094000_caller_context.sql', '20261201098000_caller_tenant_lists.sql'],
  'private.role_in': ['20261201094000_caller_context.sql'],
  // No lookup without claims; the timestamp rendering planned once per connection.
  // ... and an API key's principal: its creator, only in its tenant (issue 15).
  'private.caller_context': [
    '20261201095000_machine_path_speed.sql',
    '20261201098000_caller_tenant_lists.sql',
    '20261202080000_api_keys.sql',
  ],
  // Idempotency keys filed per API key too, not shared with the key's creator (issue 15).
  'private.claim_idempotency_key': ['20261202080100_api_key_idempotency.sql'],
  'private.store_idempotent_response': ['20261202080100_api_key_idempotency.sql'],
  // An API key lives on its creator's admin standing: created by tenant admins only, refused
  // once its creator is no longer one (issue 15).
  // ... and waits for a removal of its creator under way (review).
  'private.create_api_key': [
    '20261202080200_api_key_owner.sql',
    '20261206161000_assignments_and_keys_wait_for_role_changes.sql',
    '20261207203000_expired_api_keys_give_their_place_back.sql', // expired keys retired first
  ],
  // ... and marks the key used without waiting for a request marking it (issue 14, review).
  'private.verify_api_key': [
    '20261202080200_api_key_owner.sql',
    '20261206012000_api_key_use_marked_without_waiting.sql',
    '20261207203000_expired_api_keys_give_their_place_back.sql', // retired at expiry: expired, not revoked
    '20261207206000_revoked_keys_stay_revoked.sql', // only the retirement's exact shape
  ],
  // An API key's claims name its tenant (issue 15).
  'private.active_tenant_id': [
    '20261202080000_api_keys.sql',
    '20261208100000_slugs_named_in_any_case.sql', // the token's slug in any case
  ],
  'private.api_timestamps': ['20261201095000_machine_path_speed.sql'],
  // The audit trail renders timestamps from trigger arguments, not a catalog read per row.
  // ... and leaves search columns out of it (issue 14).
  'private.enable_audit': [
    '20261201096000_audit_timestamps_in_trigger.sql',
    '20261201099000_audit_secret_arguments.sql',
    '20261203080000_audit_derived_and_large_values.sql',
  ],
  'private.audit_row': [
    '20261201096000_audit_timestamps_in_trigger.sql',
    '20261201099000_audit_secret_arguments.sql',
    // One statement per row, the actor only for claims with a subject (issue 12).
    '20261201153000_audit_row_speed.sql',
    // Search columns and an UPDATE's large unchanged values left out (issue 14).
    '20261203080000_audit_derived_and_large_values.sql',
    // ... and the images' size as written, for the audit page's bound (issue 14).
    '20261203080200_audit_image_bytes.sql',
  ],
  // A Chatwoot login that existed before the tenant has no password of ours to rotate (issue 13);
  // a rotation is counted, not a clearing of the credentials that hold the owner token and
  // the webhook secret (issue 14, review of the webhooks).
  // An attachment's object key in the characters Supabase Storage takes (issue 14, review
  // of the tickets function).
  'private.set_attachment_location': ['20261205191000_attachment_storage_keys.sql'],
  // An endpoint disabled after a day of failures, not 30 attempts that parallel queues
  // spend in seconds; a 429 is no failure of the endpoint (issue 14, review of the webhooks).
  'private.webhook_endpoint_reenabled': [
    '20261205192000_webhook_endpoint_failing_since.sql',
    '20261208117000_a_new_url_starts_a_new_record.sql', // a new URL keeps no failure record of the old one
  ],
  // ... and a delivery out of retries while its endpoint fails is held for re-enabling.
  'private.record_webhook_attempt': [
    '20261205192000_webhook_endpoint_failing_since.sql',
    '20261205210000_webhook_delivery_held_at_last_attempt.sql',
    '20261206166000_delivery_gone_in_flight_ends_its_job.sql', // 'gone' under a held lease (review)
    '20261207200000_superseded_delivery_attempt_not_final.sql', // a superseded job's attempt is not final
  ],
  // A tenant turning active restores only what its suspension or deletion took, and not
  // a service its plan no longer includes (issue 14, review of the tenants function).
  'private.tenant_status_to_services': [
    '20261205201000_resume_restores_what_suspension_took.sql',
    '20261207121000_deleted_tenant_suspended_keeps_its_services.sql', // a deleted tenant suspended keeps its spaces
    '20261208115000_restores_keep_plan_paused_services.sql', // what the plan paused is paused again, not removed
  ],
  // Hours with no business time at all name business_hours (issue 14, review).
  'private.sla_policy_hours_valid': [
    '20261205213000_sla_hours_without_business_time.sql',
    '20261207126000_sla_time_zones_by_name.sql', // a zone by its tz database name, not a POSIX spec
  ],
  // An echo claims a pending reply only when its id is no reply's yet (issue 14, review).
  // ... and only of a reply whose job has begun.
  'private.claim_chatwoot_echo': [
    '20261205209000_chatwoot_echo_claims_only_unknown_ids.sql',
    '20261205215000_chatwoot_echo_needs_a_started_job.sql',
  ],
  'private.rotate_service_credentials': [
    '20261201151000_chatwoot_rotation_existing_login.sql',
    '20261205190000_chatwoot_rotation_keeps_token.sql',
  ],
  // The caller's team keys through the (tenant_id, user_id) index, not a tenant-wide walk.
  'private.my_team_keys': ['20261201150000_team_keys_by_member_index.sql'],
  // The SLA clock stops while a ticket is pending: due dates keep the paused time, and the
  // sweep never breaches a waiting ticket (issue 16 §2).
  // ... and the policy of a ticket is its team's for the priority, else the tenant's, found by
  // private.sla_policy_for alone; a team change computes the due dates again (issue 16 §2).
  'private.apply_sla': ['20261202050100_sla_pause_while_pending.sql', '20261202141000_sla_policies_per_team.sql'],
  // A policy's business hours count only while the tenant's plan includes them (review).
  'private.sla_policy_for': ['20261207145000_business_hours_follow_the_plan.sql'],
  'private.run_sla_sweep': [
    '20261202050100_sla_pause_while_pending.sql',
    '20261202050200_sla_next_response_warnings_holidays.sql',
    '20261202141000_sla_policies_per_team.sql',
    '20261206041000_inactive_tenants_left_alone.sql',
    // Each ticket checked again under its lock against its due time then (review).
    '20261206163000_sla_sweep_checks_under_its_lock.sql',
  ],
  // ... and a change to a priority or team no policy covers clears them (20261206054000).
  'private.tickets_before_update': [
    '20261202141000_sla_policies_per_team.sql',
    '20261206054000_sla_dates_leave_with_their_policy.sql',
    '20261206150000_first_response_follows_a_priority_change.sql', // also when the update sets due_date
    '20261206162000_merged_tickets_answered_not_resolved.sql', // a close by a merge is no resolution
    '20261207105000_settled_tickets_owe_no_reply.sql', // the reply owed ends when settled, restarts when reopened
    '20261207185000_settled_tickets_keep_their_due_dates.sql', // a settled ticket's targets stay (its team deleted)
    '20261207216000_deleted_policies_targets_leave.sql', // a deleted policy's targets leave like a live one's
  ],
  // Holidays in a business-hours calendar; a next-response clock run by the reply trigger,
  // which the pause moves too (issue 16 §2).
  // ... then null past ten years of days, not an error in every later ticket write (issue
  // 14, review of the tickets function).
  // ... then real minutes across a daylight-saving change, not the local clock's (review of
  // the SLA, issue 14).
  'private.add_business_minutes': [
    '20261202050200_sla_next_response_warnings_holidays.sql',
    '20261205206000_sla_hours_checked_on_write.sql',
    '20261208122000_business_time_in_real_minutes.sql',
  ],
  'private.business_minutes_between': [
    '20261202050200_sla_next_response_warnings_holidays.sql',
    '20261208122000_business_time_in_real_minutes.sql',
  ],
  // Automation rules: the capture renders the old row once; actions that would change
  // nothing write nothing (issue 16 §1, measured in tests/bench/automation.bench.ts).
  // ... and custom_fields among what changed when staff-only values changed too (20261206065000).
  // ... and not a custom field's move between the row and ticket_internal_fields (review).
  'private.automation_capture': [
    '20261202140100_automation_speed.sql',
    '20261206065000_third_round_review.sql',
    '20261208126000_custom_field_moves_tell_no_rule.sql',
  ],
  'private.custom_field_definition_changed': ['20261208126000_custom_field_moves_tell_no_rule.sql'],
  'private.automation_apply_action': [
    '20261202140100_automation_speed.sql',
    '20261202140200_automation_custom_fields.sql',
    '20261202141300_automation_review_fixes.sql',
    // set_custom_field writes only a value the ticket does not have (review).
    '20261208125000_rule_actions_name_usable_fields_and_people.sql',
  ],
  // Actions name a custom field of the tenant, and no assignee disabled on the platform (review).
  'private.actions_name_existing_targets': ['20261208125000_rule_actions_name_usable_fields_and_people.sql'],
  // Rules read custom fields wherever they are kept, and set them (issue 16 §1 x §4).
  'private.automation_subject': ['20261202140200_automation_custom_fields.sql'],
  'private.automation_actions_ok': ['20261202140200_automation_custom_fields.sql'],
  // A reply's POST is marked begun only while it is pending (review of 20261208103000).
  'private.chatwoot_reply_post_begins': ['20261208109000_chatwoot_reply_posts_begin_while_pending.sql'],
  // Queued in bounded batches, probed through an index of their own (review of job tasks).
  'private.queue_missing_attachment_checks': ['20261208110000_attachment_checks_queued_in_bounded_batches.sql'],
  // A call's minutes count in the month it ended, corrections there too (review of usage).
  'private.count_call_minutes': ['20261208118000_call_minutes_in_their_calls_month.sql'],
  // A deleted key that still counted gives its place back (review of usage).
  'private.count_api_key': ['20261208119000_deleted_api_keys_give_their_place_back.sql'],
  // Pending-for rules count in the ticket's own policy's hours (team or tenant).
  'private.run_automation_sweep': [
    '20261202141200_automation_sweep_team_policy.sql',
    '20261202141300_automation_review_fixes.sql',
    // The job carries the wait's start; a wait over by the time it runs matches nothing.
    '20261206051000_timed_rules_need_their_wait.sql',
    '20261206156000_rule_replies_keep_the_wait.sql', // looks past the messages rules posted
    '20261207111000_automation_sees_chatwoot_and_shares_sweeps.sql', // Chatwoot's staff; a tenant's share
    '20261207140000_timed_rules_wait_as_the_rule_says.sql', // the job carries when it was judged
  ],
  // After review: the ticket locked first, passing errors retried, read-only tenants
  // left alone, personal templates refused (issue 16 §1).
  'private.run_automation': [
    '20261202141300_automation_review_fixes.sql',
    '20261206051000_timed_rules_need_their_wait.sql',
    '20261206156000_rule_replies_keep_the_wait.sql', // looks past the messages rules posted
    '20261206162000_merged_tickets_answered_not_resolved.sql', // a merged ticket runs no rule
    '20261207111000_automation_sees_chatwoot_and_shares_sweeps.sql', // a Chatwoot message's side
    '20261207140000_timed_rules_wait_as_the_rule_says.sql', // a lengthened wait is waited for
    '20261208102000_automation_holds_its_tenant.sql', // a suspension meanwhile is seen
  ],
  // The chain of rules rides along the assign-ticket job (issue 16 §1).
  'private.assign_ticket_on_new_team': ['20261202141500_automation_chain_through_assignment.sql'],
  'private.ticket_messages_after_insert': [
    '20261202050200_sla_next_response_warnings_holidays.sql',
    '20261202141000_sla_policies_per_team.sql',
    // The reply staff owe an answer to is kept (private.ticket_replies_owed).
    '20261206132000_next_response_follows_the_policy.sql',
    // An authorless message whose side the service role names (Chatwoot's) counts (issue 14 review).
    '20261207103000_chatwoot_replies_answer_tickets.sql',
    // A customer follower's reply reopens a pending ticket, as the requester's does (review).
    '20261207146000_followers_replies_are_the_customers.sql',
    // An internal note leaves its ticket untouched (its time was the customer's to read).
    '20261207204000_internal_notes_leave_their_ticket_untouched.sql',
    // A staff answer clears the next-response breach mark, a clock running or not (review).
    '20261207218000_answers_clear_the_next_response_breach.sql',
    // A late answer to a reply owed is told as a breach met late (stop 58's known limit).
    '20261207230000_next_responses_met_late_told.sql',
    // The reply owed starts from the message's time (written by clock_timestamp since 111000).
    '20261208113000_reply_clocks_start_at_the_message.sql',
  ],
  'private.tickets_sla_pause': [
    '20261202050200_sla_next_response_warnings_holidays.sql',
    '20261202141000_sla_policies_per_team.sql',
    // Resolved straight from pending, the wait still moves the resolution due date.
    '20261206053000_pending_resolved_keeps_its_wait.sql',
    // The wait since the reply owed is counted; a priority or team change's clock is left
    // to tickets_sla_next_response.
    '20261206132000_next_response_follows_the_policy.sql',
    // A reopened ticket's first response and resolution do not count its settled time.
    '20261207128000_reopened_tickets_skip_their_settled_time.sql',
    // Leaving pending keeps a due date the same update names, as reopening does (review).
    '20261208123000_leaving_pending_keeps_a_named_due_date.sql',
  ],
  // A platform admin's standing in a tenant id needs the tenant (review of authorization).
  // ... and a purged tenant's trail stays theirs to read (review).
  'private.tenant_access': [
    '20261208124000_platform_admins_name_existing_tenants.sql',
    '20261208129000_trail_jobs_bounded_and_purged_trails_read.sql',
    // ... and back to 124000's: a purged tenant is a 404 on every route (review).
    '20261208133000_follow_locks_retries_and_purged_tenants_mended.sql',
  ],
  // A new note's mentions through the helper an edit's use too (stop 60's known limit).
  'private.ticket_messages_followers': ['20261208134000_mentions_added_by_an_edit_are_told.sql'],
  // Customers follow tickets where the tenant allows it (issue 16 §5): their follows count
  // there, they add only customers, and hear of public changes only.
  'private.my_followed_ticket_keys': ['20261202141100_customer_followers.sql'],
  // ... and reads the follower's membership FOR SHARE NOWAIT: a 503 during a role change (review).
  'private.ticket_followers_check': [
    '20261202141100_customer_followers.sql',
    '20261206035000_customer_followers_customers_only.sql',
    '20261206161000_assignments_and_keys_wait_for_role_changes.sql',
  ],
  // A changing value reads its field's definition FOR SHARE, so a visibility change and
  // the write never miss each other (issue 14, review of the custom fields).
  // ... and a change of staff-only values alone is told as an update (20261206064000).
  'private.write_ticket_custom_fields': [
    '20261206010000_custom_field_writes_wait_for_visibility.sql',
    '20261206064000_hidden_field_changes_told.sql',
    '20261206065000_third_round_review.sql',
    '20261207112000_required_fields_not_blank.sql', // a blank value is no answer to a required field
  ],
  // ... PL/pgSQL, planned once a session (issue 14, per-row trigger cost).
  'private.notify_followers': [
    '20261202141100_customer_followers.sql',
    '20261205160000_row_trigger_helpers_planned_once.sql',
  ],
  // A person who cannot sign in is no tenant's first admin (issue 14, tenants review).
  'private.find_or_create_user': ['20261207125000_invitations_and_first_admins.sql'],
  // A recurring job keeps its failures, and a crashed run is not followed by a second;
  // the metrics count as retrying what failed (issue 14, job queue review).
  'private.add_scheduled_jobs': ['20261207129000_schedule_jobs_keep_their_failures.sql'],
  // ... and a job behind its named queue's head is queued_behind, not due (review of the runner).
  'private.job_metrics': [
    '20261207129000_schedule_jobs_keep_their_failures.sql',
    '20261208130000_job_figures_and_retries_follow_queues.sql',
    // ... and dead_last_24h counts jobs revived since they died (review of the runner).
    '20261208135000_job_deaths_counted_after_revival.sql',
  ],
  // A dead job of a named queue with live jobs after it goes to the back (review of the runner).
  // ... only a dead one, under its queue's lock (review).
  'private.retry_job': [
    '20261208130000_job_figures_and_retries_follow_queues.sql',
    '20261208133000_follow_locks_retries_and_purged_tenants_mended.sql',
  ],
  // A ticket with no requester is merged with no other; a template is filled in one pass
  // (issue 14, ticket workflow review).
  'private.render_canned_response': ['20261207130000_merges_and_templates_review.sql'],
  // An endpoint whose receiver asked for time holds all its deliveries (issue 14).
  'private.webhook_endpoint_gate': ['20261207131000_webhook_endpoints_wait_as_asked.sql'],
};

const dir = path.join(root, 'supabase', 'migrations');
const ledgerFile = path.join(root, 'tests', 'schema', 'landed-migrations.json');
const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
const source = (f: string) => readFileSync(path.join(dir, f), 'utf8');
const sha256 = (f: string) => createHash('sha256').update(readFileSync(path.join(dir, f))).digest('hex');
const ledger = JSON.parse(readFileSync(ledgerFile, 'utf8')) as Record<string, string>;

/** Every `create [or replace] function schema.name(` in the history, in file order. */
function functionCreations() {
  const out: { fn: string; file: string; replace: boolean }[] = [];
  for (const file of files) {
    // Comments would otherwise count: a function named in prose is not created.
    const sql = source(file).replace(/--[^\n]*/g, '');
    for (const m of sql.matchAll(/\bcreate\s+(or\s+replace\s+)?function\s+("?\w+"?)\.("?\w+"?)\s*\(/gi)) {
      out.push({ fn: `${m[2]}.${m[3]}`.replace(/"/g, '').toLowerCase(), file, replace: Boolean(m[1]) });
    }
  }
  return out;
}

describe('the landed migrations', () => {
  it('are never edited: every file matches its checksum in landed-migrations.json', () => {
    const changed = Object.entries(ledger).filter(([f, sum]) => !files.includes(f) || sha256(f) !== sum).map(([f]) => f);
    expect(changed, 'a landed migration was edited or removed: put the change in a new migration instead').toEqual([]);
  });

  it('grow only at the end: every migration is listed, in file order, and named <timestamp>_<concern>.sql', () => {
    for (const f of files) expect(f).toMatch(/^\d{14}_[a-z0-9_]+\.sql$/);
    const unlisted = files.filter((f) => !(f in ledger));
    expect(
      unlisted.map((f) => `  "${f}": "${sha256(f)}"`),
      'a new migration: append these lines to tests/schema/landed-migrations.json',
    ).toEqual([]);
    expect(Object.keys(ledger), 'landed-migrations.json lists the files in the order they apply').toEqual(files);
  });

  it('notices an edit: one changed byte gives another checksum', () => {
    const [first] = files;
    const bytes = readFileSync(path.join(dir, first));
    const edited = Buffer.concat([bytes, Buffer.from(' ')]);
    expect(createHash('sha256').update(edited).digest('hex')).not.toBe(ledger[first]);
    expect(sha256(first)).toBe(ledger[first]);
  });
});

describe('each function is created once', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase('history');
  });
  afterAll(() => db.close());

  it('no migration redefines (or drops and re-creates) a function an earlier one created', () => {
    const seen = new Map<string, string>();
    const problems: string[] = [];
    const redefined = new Map<string, string[]>();
    for (const { fn, file, replace } of functionCreations()) {
      const first = seen.get(fn);
      if (first === undefined) {
        seen.set(fn, file);
        if (replace) problems.push(`${fn}: created with "create or replace" in ${file}; a first definition is a plain create`);
        continue;
      }
      if (!(REDEFINITIONS[fn] ?? []).includes(file) || !replace || file <= first) {
        problems.push(`${fn}: created in ${first}, again in ${file}`);
      }
      redefined.set(fn, [...(redefined.get(fn) ?? []), file]);
    }
    expect(problems).toEqual([]);
    // The list stays true: every listed redefinition happens, in the files named.
    for (const [fn, redefining] of Object.entries(REDEFINITIONS)) expect(redefined.get(fn), fn).toEqual(redefining);
  });

  it('finds every function of ours in the migrations (the source check above sees them all)', async () => {
    // Created and dropped in the order the migrations run: a function dropped and then
    // created again with another signature (a redefinition listed above) is still there.
    const created = new Set<string>();
    for (const file of files) {
      for (
        const m of source(file).replace(/--[^\n]*/g, '').matchAll(
          /\b(create\s+(?:or\s+replace\s+)?|drop\s+)function\s+(?:if\s+exists\s+)?("?\w+"?)\.("?\w+"?)\s*\(/gi,
        )
      ) {
        const fn = `${m[2]}.${m[3]}`.replace(/"/g, '').toLowerCase();
        if (/^drop/i.test(m[1])) created.delete(fn);
        else created.add(fn);
      }
    }
    const rows = await db.sql`
      select n.nspname || '.' || p.proname as fn from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private')`;
    const catalog = [...new Set(rows.map((r) => r.fn as string))].sort();
    expect(catalog.length).toBeGreaterThanOrEqual(70);
    expect(catalog).toEqual([...created].filter((fn) => fn.startsWith('public.') || fn.startsWith('private.')).sort());
  });

  it('notices a duplicate: a second create of a function is found by the same scan', () => {
    const sql =
      `create function private.a() returns int language sql as 'select 1';\n-- create function private.b()\ncreate or replace function private.a() returns int language sql as 'select 2';`
        .replace(/--[^\n]*/g, '');
    const names = [...sql.matchAll(/\bcreate\s+(or\s+replace\s+)?function\s+("?\w+"?)\.("?\w+"?)\s*\(/gi)].map((m) =>
      `${m[2]}.${m[3]}`
    );
    expect(names).toEqual(['private.a', 'private.a']);
  });
});

describe('audit is attached by private.enable_audit', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase('history_audit');
  });
  afterAll(() => db.close());

  /** The trigger private.enable_audit creates on a table, from the catalog: the tenant
   *  column ('id' for tenants itself, '' for platform tables), then the key columns, then
   *  the timestamptz columns '@'-prefixed (rendered as the API renders them), then the
   *  secret columns '-'-prefixed (left out of the trail), then the search columns
   *  (tsvector, vector) '~'-prefixed (neither stored nor named). */
  const expectedTriggers = (db: TestDatabase) =>
    db.sql`
      select c.relname,
        (select pg_get_triggerdef(t.oid) from pg_trigger t join pg_proc p on p.oid = t.tgfoid
         where t.tgrelid = c.oid and p.proname = 'audit_row' and not t.tgisinternal) as actual,
        (select count(*)::int from pg_trigger t join pg_proc p on p.oid = t.tgfoid
         where t.tgrelid = c.oid and p.proname = 'audit_row' and not t.tgisinternal) as n,
        format('CREATE TRIGGER audit AFTER INSERT OR DELETE OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION private.audit_row(%s)',
          format('%I.%I', n.nspname, c.relname),
          (select string_agg(quote_literal(a), ', ' order by o) from unnest(
             array[case when c.relname = 'tenants' then 'id'
                        when exists (select 1 from pg_attribute x where x.attrelid = c.oid and x.attname = 'tenant_id' and not x.attisdropped)
                        then 'tenant_id' else '' end]
             || (select array_agg(x.attname::text order by k.ord) from pg_index i
                 cross join lateral unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
                 join pg_attribute x on x.attrelid = i.indrelid and x.attnum = k.attnum
                 where i.indrelid = c.oid and i.indisprimary)
             || (select coalesce(array_agg('@' || x.attname order by x.attnum), '{}') from pg_attribute x
                 where x.attrelid = c.oid and x.attnum > 0 and not x.attisdropped and x.atttypid = 'timestamptz'::regtype)
             || (select coalesce(array_agg('-' || x.attname order by x.attnum), '{}') from pg_attribute x
                 where x.attrelid = c.oid and x.attnum > 0 and not x.attisdropped and x.attname like '%\\_encrypted')
             || (select coalesce(array_agg('~' || x.attname order by x.attnum), '{}') from pg_attribute x join pg_type y on y.oid = x.atttypid
                 where x.attrelid = c.oid and x.attnum > 0 and not x.attisdropped and (x.atttypid = 'tsvector'::regtype or y.typname = 'vector'))
             ) with ordinality u(a, o))) as expected
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname <> all(${['audit_logs', ...UNAUDITED_TABLES]})
      order by c.relname`;

  it('every table in public but the trail has exactly the trigger enable_audit makes, keys from the catalog', async () => {
    const rows = await expectedTriggers(db);
    expect(rows.length).toBeGreaterThanOrEqual(16);
    for (const r of rows) {
      expect(r.n, `${r.relname}: one audit_row trigger`).toBe(1);
      expect(r.actual, r.relname).toBe(r.expected);
    }
  });

  it('no migration attaches audit_row by hand (the key columns are never listed by hand)', () => {
    const byHand = files.filter((f) => /execute\s+function\s+private\.audit_row\s*\(\s*'/i.test(source(f)));
    expect(byHand).toEqual([]);
    const enabling = files.filter((f) => /select\s+private\.enable_audit\(/i.test(source(f)));
    expect(enabling.length).toBeGreaterThanOrEqual(5);
  });

  it("reads a table's tenant column and primary key, in key order, and refuses a table without a key", async () => {
    await db
      .sql`create table public.zz_audit_probe (a text, b int, tenant_id uuid, at timestamptz, key_encrypted text, words tsvector, primary key (b, a))`;
    await db.sql`create table private.zz_audit_platform (k text primary key)`;
    await db.sql`create table private.zz_audit_keyless (k text)`;
    try {
      await db.sql`select private.enable_audit('public.zz_audit_probe'), private.enable_audit('private.zz_audit_platform')`;
      const args = await db.sql`
        select c.relname, encode(t.tgargs, 'escape') as args from pg_trigger t join pg_class c on c.oid = t.tgrelid
        where t.tgname = 'audit' and c.relname like 'zz_audit_%' order by 1`;
      expect(args.map((r) => `${r.relname}: ${String(r.args).split('\\000').filter((_, i, a) => i < a.length - 1).join(',')}`))
        .toEqual([
          'zz_audit_platform: ,k',
          'zz_audit_probe: tenant_id,b,a,@at,-key_encrypted,~words',
        ]);
      // Calling it again replaces the trigger rather than adding a second one.
      await db.sql`select private.enable_audit('public.zz_audit_probe')`;
      const [{ n }] = await db
        .sql`select count(*)::int as n from pg_trigger where tgrelid = 'public.zz_audit_probe'::regclass and not tgisinternal`;
      expect(n).toBe(1);
      await expect(db.sql`select private.enable_audit('private.zz_audit_keyless')`).rejects.toThrow(/no primary key/);
    } finally {
      await db.sql`drop table public.zz_audit_probe, private.zz_audit_platform, private.zz_audit_keyless`;
    }
  });

  it('is for migrations only: no API role may attach or re-key the trail', async () => {
    const [r] = await db.sql`
      select has_function_privilege('authenticated', 'private.enable_audit(regclass, text)', 'execute') as auth,
             has_function_privilege('service_role', 'private.enable_audit(regclass, text)', 'execute') as service,
             has_function_privilege('anon', 'private.enable_audit(regclass, text)', 'execute') as anon`;
    expect(r).toEqual({ auth: false, service: false, anon: false });
  });
});
