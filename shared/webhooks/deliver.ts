// Outbound webhook endpoints' secrets. Delivery itself is a job of the one queue
// (shared/jobs/tasks/deliver-webhook.ts).
import { encryptJson } from '../crypto.ts';

/** A new endpoint secret, in the whsec_ form receivers' libraries take, sealed for that
 *  endpoint of that tenant alone. */
export async function newEndpointSecret(
  tenantId: string,
  endpointId: string,
): Promise<{ secret: string; sealed: string }> {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const secret = `whsec_${btoa(String.fromCharCode(...bytes))}`;
  return { secret, sealed: await encryptJson({ secret }, { tenantId, endpointId }) };
}
