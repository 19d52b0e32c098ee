// An issuer's remote key set (JWKS URL), cached, with every fetch — failed ones too —
// under one cooldown. jose's createRemoteJWKSet cools down only after a successful
// fetch, so an issuer answering 500 or hanging was fetched again for every token; here
// a failure is remembered: until the cooldown has passed no token causes another fetch,
// and while no keys are known every token gets KeysUnavailable (a 503 to retry). Keys
// past their cache age keep verifying while the issuer does not answer (for up to
// `staleIfErrorMs` more): an outage of the key endpoint alone does not sign everyone out.
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/** The issuer's keys cannot be had right now: not the caller's fault, worth a retry. */
export class KeysUnavailable extends Error {
  constructor(readonly url: string, reason: string, /** when the next fetch may happen */ readonly retryAfterMs: number) {
    super(`JWKS ${url} unavailable: ${reason}`);
    this.name = 'KeysUnavailable';
  }
}

export interface RemoteKeySetOptions {
  /** Minimum time between two fetches that a token causes (after success or failure). */
  cooldownMs: number;
  /** How long fetched keys are used before they are fetched again. */
  cacheMaxAgeMs: number;
  /** Timeout of one fetch, body included. */
  timeoutMs: number;
  /** How long keys past their cache age still verify while fetching them again fails
   *  (default a day). */
  staleIfErrorMs?: number;
}

export interface RemoteKeySet extends JWTVerifyGetKey {
  /** Fetches made so far (successful or not). */
  readonly fetches: number;
}

export function remoteKeySet(url: URL, opts: RemoteKeySetOptions): RemoteKeySet {
  const href = url.href;
  let keys: ReturnType<typeof createLocalJWKSet> | undefined;
  let fetchedAt = -Infinity; // last successful fetch
  let attemptedAt = -Infinity; // last fetch, whatever its outcome
  let lastFailure: string | undefined; // why the last fetch failed (undefined: it did not)
  let pending: Promise<void> | undefined;
  let fetches = 0;

  const load = async (): Promise<void> => {
    fetches++;
    attemptedAt = Date.now();
    try {
      const res = await fetch(href, {
        redirect: 'manual',
        headers: { accept: 'application/json, application/jwk-set+json' },
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        throw new Error(`HTTP ${res.status}`);
      }
      const next = createLocalJWKSet(await res.json() as JSONWebKeySet);
      keys = next;
      fetchedAt = Date.now();
      lastFailure = undefined;
    } catch (err) {
      lastFailure = (err as Error).name === 'TimeoutError' ? 'timed out' : (err as Error).message;
      console.error(`[auth] JWKS ${href} unavailable (${lastFailure}); next try in ≥ ${opts.cooldownMs} ms`);
      throw new KeysUnavailable(href, lastFailure, opts.cooldownMs);
    }
  };
  /** One fetch at a time: concurrent tokens wait for the same one. */
  const refresh = (): Promise<void> => {
    pending ??= load().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  const coolingDown = () => Date.now() < attemptedAt + opts.cooldownMs;

  const getKey = async (header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) => {
    if (pending) await pending.catch(() => {});
    if (!keys || Date.now() >= fetchedAt + opts.cacheMaxAgeMs) {
      // Keys past their age still serve while the issuer fails, for a while.
      const stale = keys && Date.now() < fetchedAt + opts.cacheMaxAgeMs + (opts.staleIfErrorMs ?? 86_400_000) ? keys : undefined;
      // No usable keys: fetch, unless the last fetch failed within the cooldown.
      if (lastFailure !== undefined && coolingDown()) {
        if (!stale) {
          throw new KeysUnavailable(href, `${lastFailure} (cooling down)`, attemptedAt + opts.cooldownMs - Date.now());
        }
      } else {
        await refresh().catch((err) => {
          if (!stale) throw err;
        });
      }
    }
    try {
      return await keys!(header, token);
    } catch (err) {
      if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
      // An unknown kid may be a rotation: refetch, at most once per cooldown.
      if (coolingDown()) {
        // The issuer's key endpoint failed last time: only it can tell whether the kid is
        // a rotation the keys here predate — not the caller's fault (a 401 would sign
        // them out).
        if (lastFailure !== undefined) {
          throw new KeysUnavailable(
            href,
            `${lastFailure} (the key may be new)`,
            Math.max(0, attemptedAt + opts.cooldownMs - Date.now()),
          );
        }
        throw err;
      }
      await refresh();
      return await keys!(header, token);
    }
  };
  return Object.defineProperty(getKey, 'fetches', { get: () => fetches }) as RemoteKeySet;
}
