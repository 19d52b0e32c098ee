// The one refusal of an API key that lacks a scope a request needs besides its route's
// own (the route's is checked by needs.*): what an endpoint's events carry, what a rule
// reads and writes, which tables' audit entries a key may read. People are not limited
// by scopes here; their role is checked by the route.
import { ApiError } from '../errors.ts';
import type { Scope } from './api-keys.ts';

/** The scopes of `needed` an API key lacks (none for a person: `scopes` undefined). */
export function missingScopes(scopes: readonly Scope[] | undefined, needed: readonly Scope[]): Scope[] {
  return scopes ? [...new Set(needed)].filter((scope) => !scopes.includes(scope)) : [];
}

/** Refuses an API key without every scope of `needed`: 403 insufficient_scope naming them
 *  in `details.required_scopes`, the message saying what they are for. */
export function requireScopes(scopes: readonly Scope[] | undefined, needed: readonly Scope[], what: string): void {
  const missing = missingScopes(scopes, needed);
  if (missing.length) {
    throw new ApiError(403, 'insufficient_scope', `${what}: this API key needs ${missing.join(', ')}`, {
      required_scopes: missing,
    });
  }
}
