// One error shape everywhere: { error: { code, message, details } } with the right
// status. Bad input never becomes a 500; unknown failures are logged and reported
// without internals.
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { connectionFailure } from './db.ts';
import { UNIQUE_KEYS } from './unique-keys.ts';

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Response headers that belong to this error (e.g. Retry-After). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type ErrorBody = { error: { code: string; message: string; details?: unknown } };

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export const badRequest = (code: string, message: string, details?: unknown) => new ApiError(400, code, message, details);
export const unauthorized = (code: string, message: string) => new ApiError(401, code, message);
export const forbidden = (message = 'You are not allowed to do this', code = 'forbidden') => new ApiError(403, code, message);
export const notFound = (what = 'Resource') => new ApiError(404, 'not_found', `${what} not found`);
export const conflict = (code: string, message: string, details?: unknown) => new ApiError(409, code, message, details);
export const unprocessable = (message: string, details?: unknown) => new ApiError(422, 'validation_failed', message, details);

/** Seconds a client should wait before retrying while the database is away. */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

/** The database cannot be reached (refused, timed out, connection lost, backend
 *  terminated, server shutting down or starting): a 503 the client may retry. */
export const databaseUnavailable = () =>
  new ApiError(503, 'database_unavailable', 'The database is unavailable; retry shortly', undefined, {
    'Retry-After': String(DATABASE_RETRY_AFTER_SECONDS),
  });

/** Object storage did not answer (down, timed out) or refused to sign: a 503 the client
 *  may retry, as for the database, not a 500 or a missing object. */
export const storageUnavailable = () =>
  new ApiError(503, 'storage_unavailable', 'The storage is unavailable; retry shortly', undefined, { 'Retry-After': '5' });

/** A token issuer's keys cannot be fetched right now: a 503 to retry once the key set's
 *  cooldown has passed (no token causes a fetch before then). */
export const issuerUnavailable = (retryAfterMs = 1_000) =>
  new ApiError(503, 'issuer_unavailable', 'The token issuer cannot be reached; retry shortly', undefined, {
    'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1_000))),
  });

export type PgLikeError = {
  name?: string;
  code?: string;
  message: string;
  detail?: string;
  constraint_name?: string;
  column_name?: string;
  table_name?: string;
};

export function isPgError(err: unknown): err is PgLikeError {
  return typeof err === 'object' && err !== null && (err as { name?: string }).name === 'PostgresError';
}

/** The column a composite foreign key checks, by the `<table>_<tenant_id>_<column>_fkey`
 *  naming Postgres gives them: `teams_tenant_id_lead_user_id_fkey` → lead_user_id. */
function referencedField(constraint: string | undefined): string {
  const m = constraint?.match(/_tenant_id_(.+)_fkey$/);
  return m?.[1] ?? constraint ?? 'body';
}

/** A unique violation (23505) named by the columns the caller chose: the map is read
 *  from the catalog (shared/unique-keys.ts) because Postgres leaves the "Key (…)=(…)"
 *  detail out for a caller who may not see the existing row, as under RLS. A key of
 *  unknown name, or of tenant_id alone, names no field. */
function alreadyExists(constraint: string | undefined): ApiError {
  const fields = (constraint !== undefined && Object.hasOwn(UNIQUE_KEYS, constraint) ? UNIQUE_KEYS[constraint] : []).map(
    (field, _, all) => ({
      field,
      message: all.length === 1
        ? 'is already taken'
        : `is already taken together with ${all.filter((f) => f !== field).join(' and ')}`,
    }),
  );
  const message = fields.length === 0
    ? 'A record with these values already exists'
    : fields.length === 1
    ? `${fields[0].field} is already taken`
    : `The combination of ${fields.map((f) => f.field).join(' and ')} is already taken`;
  return conflict('already_exists', message, { constraint, fields });
}

/** The column a check constraint is about, read from its name: Postgres names a column's
 *  check `<table>_<column>_check`, and the schema's own follow `<table>_<column>_valid`
 *  (voice_agents_llm_config_valid → llm_config). A check of several columns
 *  (`<table>_check`) names none. */
function checkedColumn(err: PgLikeError): string | undefined {
  const prefix = `${err.table_name}_`;
  const name = err.constraint_name;
  if (!err.table_name || !name?.startsWith(prefix)) return undefined;
  const column = name.slice(prefix.length).replace(/_(check|valid)\d*$/, '');
  return column && column !== name.slice(prefix.length) ? column : undefined;
}

/** The code and details a database refusal carries for the response, in its `detail`:
 *  JSON `{"code": …, "details": …}` (the rules in SQL write it with
 *  `using detail = jsonb_build_object(…)`). Anything else in `detail` is not for clients. */
function refusalOf(detail: string | undefined): { code: string; details?: unknown } | undefined {
  if (!detail?.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(detail) as { code?: unknown; details?: unknown };
    return typeof parsed.code === 'string' ? { code: parsed.code, details: parsed.details ?? undefined } : undefined;
  } catch {
    return undefined;
  }
}

/** What a rule checked by a trigger as a constraint (errcode 23514 with a constraint name)
 *  says of the value, where "breaks a rule of the schema" would not tell the caller what
 *  to send instead. */
const CHECK_MESSAGES: Readonly<Record<string, string>> = {
  tickets_assignee_role_check: 'is not an agent or admin of this tenant',
  tickets_assignee_active_check: 'is disabled on the platform',
};

/** Runs `work`, and answers a refusal naming columns (a 422's `fields`, a 403's `field`)
 *  with the request's own names for them (`{created_by: 'requester_id'}`): a route whose
 *  body calls a column otherwise says which field to fix. Anything else is thrown as it
 *  came (a server error keeps its cause for the log). */
export async function namingFields<T>(names: Readonly<Record<string, string>>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const api = err instanceof ApiError ? err : isPgError(err) ? fromPgError(err) : undefined;
    if (!api || api.status >= 500 || typeof api.details !== 'object' || api.details === null) throw err;
    const named = (field: unknown) => typeof field === 'string' && Object.hasOwn(names, field);
    const details = api.details as { field?: unknown; fields?: { field: string; message: string }[] };
    if (!named(details.field) && !details.fields?.some((f) => named(f.field))) throw err;
    throw new ApiError(api.status, api.code, api.message, {
      ...details,
      ...(named(details.field) ? { field: names[details.field as string] } : {}),
      ...(details.fields ? { fields: details.fields.map((f) => (named(f.field) ? { ...f, field: names[f.field] } : f)) } : {}),
    }, api.headers);
  }
}

/** The statuses a rule in SQL may answer with, by SQLSTATE PTnnn (PostgREST's convention:
 *  the HTTP status in the code), and the code each answers when the raise names none. */
const REFUSALS: Record<string, { status: ContentfulStatusCode; code: string }> = {
  PT400: { status: 400, code: 'bad_request' },
  PT401: { status: 401, code: 'unauthorized' },
  PT403: { status: 403, code: 'forbidden' },
  PT404: { status: 404, code: 'not_found' },
  PT409: { status: 409, code: 'conflict' },
  PT410: { status: 410, code: 'gone' },
  PT422: { status: 422, code: 'validation_failed' },
  PT429: { status: 429, code: 'rate_limited' },
  // Busy: what the caller's request needs is being changed by another (retry shortly).
  PT503: { status: 503, code: 'retry' },
};

/** Maps a database error to the API error a client should see. A rule the database
 *  enforces answers with its PTnnn status and, when its `detail` carries them, its own
 *  code and details (a refused status transition: 409 invalid_transition with the
 *  allowed targets); the message is the exception's. */
export function fromPgError(err: PgLikeError): ApiError {
  const constraint = err.constraint_name;
  const refusal = err.code ? REFUSALS[err.code] : undefined;
  if (refusal) {
    // Busy (PT503): come back in a second, as for a concurrent update.
    const busy = refusal.status === 503 ? { 'Retry-After': '1' } : undefined;
    const said = refusalOf(err.detail);
    if (said) {
      // A rule's 429 says when to come back (details.retry_after, seconds), as the rate limits do.
      const wait = (said.details as { retry_after?: unknown } | undefined)?.retry_after;
      const headers = refusal.status === 429 && typeof wait === 'number' ? { 'Retry-After': String(wait) } : busy;
      return new ApiError(refusal.status, said.code, err.message, said.details, headers);
    }
    // A bare 404 names nothing: what was not found may not be the caller's to know.
    if (refusal.status === 404) return notFound();
    return new ApiError(refusal.status, refusal.code, err.message, undefined, busy);
  }
  switch (err.code) {
    case '23505':
      return alreadyExists(constraint);
    case '23503':
      // Removing a row still referenced: Postgres says so in the detail ("Key … is still
      // referenced from table …"), and its message starts "update or delete on table".
      return err.detail?.includes('still referenced') || err.message.startsWith('update or delete on table')
        ? conflict('still_referenced', 'The record is still in use', { constraint })
        : unprocessable('A referenced record does not exist in this tenant', {
          constraint,
          fields: [{ field: referencedField(constraint), message: 'does not exist in this tenant' }],
        });
    case '23514':
    case '23502':
      return unprocessable('The data breaks a rule of the schema', {
        constraint,
        fields: [{
          field: err.column_name ?? checkedColumn(err) ?? constraint ?? 'body',
          message:
            (constraint !== undefined && Object.hasOwn(CHECK_MESSAGES, constraint) ? CHECK_MESSAGES[constraint] : undefined) ??
              'breaks a rule of the schema',
        }],
      });
    case '42501':
      return forbidden();
    case '40001':
    case '40P01':
      return new ApiError(503, 'retry', 'Concurrent update; retry the request', undefined, { 'Retry-After': '1' });
    case '55P03': // lock_timeout: a lock waited for too long
    case '57014':
      return new ApiError(503, 'timeout', 'The database took too long to answer', undefined, { 'Retry-After': '1' });
    default:
      // Class 22 (data exception: bad text, out-of-range numbers, invalid JSON…) is
      // always the caller's input.
      if (err.code?.startsWith('22')) {
        return unprocessable('The data is not acceptable', {
          fields: [{ field: err.column_name ?? 'body', message: 'is not acceptable to the database' }],
        });
      }
      return new ApiError(500, 'internal_error', 'Internal error');
  }
}

/** Normalises anything thrown inside a handler. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (connectionFailure(err)) return databaseUnavailable();
  if (isPgError(err)) return fromPgError(err);
  const status = (err as { status?: number })?.status;
  if (status === 400 && (err as Error).message?.toLowerCase().includes('json')) {
    return badRequest('invalid_json', 'The request body is not valid JSON');
  }
  return new ApiError(500, 'internal_error', 'Internal error');
}
