// One interface for every partner product. Each step is idempotent: the connector
// finds the partner's object by a stable key (the tenant's slug or id, the owner's
// e-mail) before creating it, so a retry after a crash never makes a duplicate.

export type ServiceName = 'chatwoot' | 'botpress' | 'n8n' | 'odoo';

export interface ProvisionContext {
  tenant: { id: string; slug: string; name: string };
  /** The tenant's first admin: the owner login the partner account gets. */
  admin: { email: string; name: string } | null;
  /** Partner ids recorded so far (by earlier runs or earlier steps of this one). */
  externalIds: Record<string, unknown>;
  /** Decrypted credentials recorded so far. */
  credentials: Record<string, unknown> | null;
  /** Persists partner ids (and credentials) at once, before the next partner call. */
  checkpoint(ids: Record<string, unknown>, credentials?: Record<string, unknown>): Promise<void>;
  /** How many other tenants' services of this partner, not removed, record the same
   *  partner id under `key` (a login several tenants share). Without it, assume some. */
  otherTenantsUsing?(key: string, value: unknown): Promise<number>;
}

/** The former owners whose access to the tenant's partner objects is still to be taken
 *  away: those recorded (`former_user_ids`; `former_user_id` as kept before), and the
 *  recorded owner when another is the owner now; never the owner now. A list: the owner
 *  can change again before a run that failed has taken away the access of the first. */
export function formerOwners<T extends string | number>(externalIds: Record<string, unknown>, owner: T): T[] {
  const recorded = (externalIds.former_user_ids as T[] | undefined) ?? [];
  const single = externalIds.former_user_id as T | null | undefined;
  const known = externalIds.user_id as T | null | undefined;
  const all = [...recorded, ...(single == null ? [] : [single]), ...(known == null ? [] : [known])];
  return [...new Set(all)].filter((id) => id !== owner);
}

/** The partner ids that record former owners (from formerOwners) until their access is
 *  taken away: nothing to record when there are none. */
export const formerOwnersRecord = (formers: (string | number)[]): Record<string, unknown> =>
  formers.length ? { former_user_ids: formers, former_user_id: null } : {};

/** What the server keeps beside a login and never shows: the owner's Chatwoot API token
 *  (which opens every account that login administers), the webhook signing secret, the
 *  note that a password is still being applied, and the login an Odoo database's
 *  administrator is being handed over from (with its password). */
const MACHINE_SECRETS = [
  'access_token',
  'webhook_secret',
  'webhook_former_secret',
  'password_pending',
  'password_unconfirmed',
  'handing_over',
];

/** Whether stored credentials hold a password not yet known to work at the partner
 *  (chosen and recorded before the partner saw it): not shown to anyone until it is. */
export const passwordUnsettled = (credentials: Record<string, unknown>): boolean =>
  credentials.password_pending === true || credentials.password_unconfirmed === true;

/** The person a secret among the credentials belongs to, or null when they hold none of
 *  a person's: the one an invitation link is for (n8n's `invite_url`, which sets the
 *  password of that person's own login — which may own another tenant's space too), or
 *  the owner of a login stored with its password (Chatwoot's owner login, an Odoo
 *  database's administrator: `owner`, else the login). Only they are shown it, not every
 *  admin: another admin shown the password would keep the login's rights after leaving
 *  the tenant, and nothing hands the login over then (its owner did not change). */
export function secretHolderOf(credentials: Record<string, unknown>): { email: string; invitation: boolean } | null {
  if (typeof credentials.invite_url === 'string' && typeof credentials.email === 'string') {
    return { email: credentials.email, invitation: true };
  }
  if (typeof credentials.password !== 'string') return null;
  const holder = [credentials.owner, credentials.login, credentials.email].find((v) => typeof v === 'string' && v !== '');
  return typeof holder === 'string' ? { email: holder, invitation: false } : null;
}

/** The part of a service's credentials its admins are shown (once): the login. */
export function shownCredentials(credentials: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(credentials).filter(([k]) => !MACHINE_SECRETS.includes(k)));
}

export interface ProvisionResult {
  externalIds?: Record<string, unknown>;
  credentials?: Record<string, unknown>;
}

export interface Connector {
  readonly service: ServiceName;
  /** Creates whatever is missing; returns the partner's ids and the owner's credentials. */
  ensure(ctx: ProvisionContext): Promise<ProvisionResult>;
  suspend(ctx: ProvisionContext): Promise<ProvisionResult | void>;
  resume(ctx: ProvisionContext): Promise<ProvisionResult | void>;
  /** Removes the tenant's objects; an object already gone counts as removed. */
  remove(ctx: ProvisionContext): Promise<ProvisionResult | void>;
  /** Whether the recorded objects still exist at the partner. */
  check(ctx: ProvisionContext): Promise<boolean>;
}

/** A partner call that failed: retryable (timeouts, dropped connections, 5xx, 429) or
 *  permanent (bad credentials, refused input, a licence missing), with the partner's
 *  Retry-After when it sent one. Messages never contain credentials. */
export class PartnerError extends Error {
  constructor(
    readonly service: ServiceName,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterSeconds?: number,
  ) {
    super(`${service}: ${message}`);
    this.name = 'PartnerError';
  }
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** Per-call timeout; every partner call has one. */
  timeoutMs?: number;
  /** Statuses that are answers, not errors (e.g. 404 when probing). */
  accept?: number[];
}

/** The longest a partner or receiver may make a job wait: a day, as the queue allows. */
export const MAX_RETRY_AFTER_SECONDS = 86_400;

/** A Retry-After header in seconds (it is seconds or an HTTP date), at most a day (the
 *  header is the other side's to write: 1e12 or a date in the year 9999 is a day);
 *  undefined when absent or unreadable. */
export function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  const date = Number.isFinite(seconds) ? undefined : Date.parse(value);
  if (date !== undefined && Number.isNaN(date)) return undefined;
  const wait = date === undefined ? seconds : Math.ceil((date - Date.now()) / 1000);
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, wait));
}

/** JSON over HTTP with a timeout and the retryable/permanent split every connector uses. */
export async function partnerFetch(
  service: ServiceName,
  url: string,
  opts: HttpOptions = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
      headers: {
        accept: 'application/json',
        ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      // Never followed: a redirect turns a POST into a GET without its body, and to another
      // origin it would carry the partner's credentials (api_access_token, X-N8N-API-KEY,
      // an Odoo key in the body), which fetch does not strip as it does Authorization.
      redirect: 'manual',
    });
  } catch (err) {
    const what = (err as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed';
    throw new PartnerError(service, `${opts.method ?? 'GET'} ${new URL(url).pathname} ${what}`, true);
  }
  // An answer whose body breaks off (the connection dropped, or the timeout ran out while
  // it came) is no answer: read as empty, a 200 looked like "not there" to the callers
  // that probe (an account not found, so not removed).
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    const what = (err as Error).name === 'TimeoutError' ? 'timed out' : 'connection failed';
    throw new PartnerError(service, `${opts.method ?? 'GET'} ${new URL(url).pathname} ${what} in the answer`, true);
  }
  const call = `${opts.method ?? 'GET'} ${new URL(url).pathname}`;
  if (res.status >= 300 && res.status < 400 && !opts.accept?.includes(res.status)) {
    // The partner's URL is set wrong (http for https, a moved path, a login proxy in
    // front): the operator's to fix, so no retry; where it points, without its query.
    const location = res.headers.get('location');
    let to = '';
    try {
      if (location) {
        const target = new URL(location, url);
        to = ` to ${target.origin}${target.pathname}`;
      }
    } catch {
      // an unreadable Location: not named
    }
    throw new PartnerError(
      service,
      `${call} → ${res.status}: redirected${to}; redirects are not followed (set the partner's URL to where it points)`,
      false,
      res.status,
    );
  }
  let body: unknown = text;
  let json = true;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    json = false; // not JSON: keep the text
  }
  if (res.ok && !json) {
    // A 2xx that is not JSON is not the partner speaking (a proxy's maintenance page, a
    // login page): read as its answer, a probe found nothing there (false drift) or a
    // lookup an empty user. Worth a retry; never an answer.
    throw new PartnerError(service, `${call} → ${res.status}: the answer is not JSON`, true, res.status);
  }
  if (res.status === 404 && text && !json) {
    // Not found, and not in the partner's words (each partner's 404s are JSON errors): a
    // proxy's or another app's page at a misrouted URL, or a route this version of the
    // partner lacks (Odoo before JSON-2). Read as the partner's, a removal took every
    // object for gone while they lived on at the partner (and the tenant was purged). The
    // operator's to fix, as a redirect is: no retry, and no status of the partner's, so
    // no caller takes it for "gone". (A gateway answering 404 in JSON still passes.)
    throw new PartnerError(
      service,
      `${call} → 404 with an answer that is not JSON, so not the partner's: check the partner's URL`,
      false,
    );
  }
  if (res.ok || opts.accept?.includes(res.status)) return { status: res.status, body, headers: res.headers };
  const detail = typeof body === 'object' && body !== null
    ? String(
      (body as Record<string, unknown>).message ?? (body as Record<string, unknown>).error ??
        JSON.stringify(body),
    ).slice(0, 300)
    : String(text).slice(0, 300);
  const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
  throw new PartnerError(
    service,
    `${call} → ${res.status}${detail ? `: ${detail}` : ''}`,
    retryable,
    res.status,
    retryAfter(res.headers.get('retry-after')),
  );
}
