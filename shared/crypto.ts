// Partner credentials at rest: AES-256-GCM with a key from PROVISIONING_ENCRYPTION_KEY
// (32 bytes, base64), a fresh 96-bit IV per value, "v1:" + base64(iv ‖ ciphertext ‖ tag).
import { requireEnv } from './env.ts';

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

export async function encryptJson(value: unknown): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new TextEncoder().encode(JSON.stringify(value));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, await key(), data));
  const out = new Uint8Array(iv.length + sealed.length);
  out.set(iv);
  out.set(sealed, iv.length);
  return `v1:${b64(out)}`;
}

export async function decryptJson<T = Record<string, unknown>>(sealed: string): Promise<T> {
  if (!sealed.startsWith('v1:')) throw new Error('unknown credential format');
  const bytes = Uint8Array.from(atob(sealed.slice(3)), (c) => c.charCodeAt(0));
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: bytes.slice(0, 12) },
    await key(),
    bytes.slice(12),
  );
  return JSON.parse(new TextDecoder().decode(plain)) as T;
}

/** A password partners accept (upper, lower, digit, symbol — Chatwoot's rule), 24+ chars. */
export function generatePassword(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `${[...bytes].map((b) => alphabet[b % alphabet.length]).join('')}A7a!`;
}
