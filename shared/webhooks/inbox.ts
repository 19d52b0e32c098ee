// Every inbound event is recorded in the inbox (provider, event id) and applied in the
// same transaction: a repeat — sequential or concurrent (it waits on the key) — finds
// the row and is acknowledged without being applied again.
import { asService, type Tx } from '../db.ts';

export type InboxOutcome = 'applied' | 'ignored' | 'duplicate';

export async function applyOnce(
  provider: string,
  eventId: string,
  eventType: string,
  tenantId: string | null,
  apply: (tx: Tx) => Promise<'applied' | 'ignored'>,
): Promise<InboxOutcome> {
  return await asService(tenantId, async (tx) => {
    const inserted = await tx`
      insert into private.webhook_inbox (provider, event_id, event_type, tenant_id)
      values (${provider}, ${eventId}, ${eventType}, ${tenantId})
      on conflict do nothing
      returning event_id
    `;
    if (!inserted.length) return 'duplicate';
    const outcome = await apply(tx);
    if (outcome === 'ignored') {
      await tx`update private.webhook_inbox set outcome = 'ignored' where provider = ${provider} and event_id = ${eventId}`;
    }
    return outcome;
  });
}
