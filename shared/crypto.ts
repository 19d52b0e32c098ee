// Secrets at rest: AES-256-GCM with a key from PROVISIONING_ENCRYPTION_KEY (32 bytes,
// base64), a fresh 96-bit IV per value, "v2:" + base64(iv ‖ ciphertext ‖ tag). Each
// ciphertext is bound by associated data to the row it belongs to — a tenant's partner
// service, or a tenant's webhook endpoint — so a ciphertext copied into another row
// (another tenant, service or endpoint) fails to decrypt instead of lending its secret.
// "v1:" values (no associated data, written before this binding existed) are read only
// in the local stack, whose .local data may hold them; everywhere else they are refused.
import { isLocalStack, requireEnv } from './env.ts';

/** The row a sealed value belongs to. */
export type SealedFor =
  | { tenantId: string; service: string }
  | { tenantId: string; endpointId: string };

let cachedKey: Promise<CryptoKey> | undefined;
let cachedFrom: string | undefined;

function key(): Promise<CryptoKey> {
  const raw = requireEnv('PROVISIONING_ENCRYPTION_KEY');
  if (cachedKey && cachedFrom === raw) return cachedKey;
  const bytes = Uint8Array.from(atob(raw), (c) => c.charCodeAt(0));
  if (bytes.length !== 32) throw new Error('PROVISIONING_ENCRYPTION_KEY must be 32 bytes, base64-encoded');
  cachedFrom = raw;
  cachedKey = crypto.subtle.importKey('raw', bytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
  return cachedKey;
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** The associated data: a label per kind of row, then the row's key. Ids in the one form
 *  Postgres writes a uuid (lower case): a request naming the tenant or endpoint in capitals
 *  finds the same row, and its secret must open for the jobs that read the id back. */
export function associatedData(owner: SealedFor): Uint8Array<ArrayBuffer> {
  const id = (v: string) => (typeof v === 'string' ? v.toLowerCase() : v);
  const parts = 'service' in owner
    ? ['tenant-service-credentials/v2', id(owner.tenantId), owner.service]
    : ['webhook-endpoint-secret/v2', id(owner.tenantId), id(owner.endpointId)];
  if (parts.some((p) => typeof p !== 'string' || p === '')) throw new Error('sealed value without its owner');
  return new TextEncoder().encode(JSON.stringify(parts));
}

export async function encryptJson(value: unknown, owner: SealedFor): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new TextEncoder().encode(JSON.stringify(value));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: associatedData(owner) },
      await key(),
      data,
    ),
  );
  const out = new Uint8Array(iv.length + sealed.length);
  out.set(iv);
  out.set(sealed, iv.length);
  return `v2:${b64(out)}`;
}

/** Throws unless the sealing key is configured and well-formed: a deployment's fault,
 *  which a caller tells apart from a value that does not open (a value's fault). */
export async function sealingKeyReady(): Promise<void> {
  await key();
}

export async function decryptJson<T = Record<string, unknown>>(sealed: string, owner: SealedFor): Promise<T> {
  const version = sealed.slice(0, 3);
  if (version !== 'v2:' && !(version === 'v1:' && isLocalStack())) {
    throw new Error(`unknown or unbound credential format (${version.replace(/:$/, '') || 'none'})`);
  }
  const bytes = Uint8Array.from(atob(sealed.slice(3)), (c) => c.charCodeAt(0));
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      version === 'v2:'
        ? { name: 'AES-GCM', iv: bytes.slice(0, 12), additionalData: associatedData(owner) }
        : { name: 'AES-GCM', iv: bytes.slice(0, 12) },
      await key(),
      bytes.slice(12),
    );
  } catch {
    // Wrong key, tampered, or sealed for another row: never a partial answer.
    throw new Error('the sealed value does not decrypt for this row');
  }
  return JSON.parse(new TextDecoder().decode(plain)) as T;
}

/** A password partners accept (upper, lower, digit, symbol — Chatwoot's rule), 24+ chars. */
export function generatePassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `${[...bytes].map((b) => alphabet[b % alphabet.length]).join('')}A7a!`;
}
