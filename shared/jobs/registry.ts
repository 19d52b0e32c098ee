// Every task the runner knows, by the name jobs carry (private.jobs.task). A job whose
// task is not here is never claimed by this deployment.
import { assignTicket } from './tasks/assign-ticket.ts';
import { attachmentUploadCheck } from './tasks/attachment-upload-check.ts';
import { automationSweep } from './tasks/automation-sweep.ts';
import { automation } from './tasks/automation.ts';
import { chatwootReply } from './tasks/chatwoot-reply.ts';
import { deliverWebhook } from './tasks/deliver-webhook.ts';
import { provision } from './tasks/provision.ts';
import { prune } from './tasks/prune.ts';
import { reconcile } from './tasks/reconcile.ts';
import { slaSweep } from './tasks/sla-sweep.ts';
import { storageDelete } from './tasks/storage-delete.ts';
import { voiceErasureTrail } from './tasks/voice-erasure-trail.ts';
import { voiceStaleCalls } from './tasks/voice-stale-calls.ts';
import { type AnyTask, registered } from './types.ts';

export const tasks: Record<string, AnyTask> = {
  provision: registered(provision),
  'deliver-webhook': registered(deliverWebhook),
  'chatwoot-reply': registered(chatwootReply),
  'sla-sweep': registered(slaSweep),
  prune: registered(prune),
  reconcile: registered(reconcile),
  'assign-ticket': registered(assignTicket),
  automation: registered(automation),
  'automation-sweep': registered(automationSweep),
  'voice-stale-calls': registered(voiceStaleCalls),
  'storage-delete': registered(storageDelete),
  'attachment-upload-check': registered(attachmentUploadCheck),
  'voice-erasure-trail': registered(voiceErasureTrail),
};
