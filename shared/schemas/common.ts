// Schemas shared by every function's API: ids, the error shape, pagination.
import { z } from '@hono/zod-openapi';
import { unprocessable } from '../errors.ts';

/** The textual form of a UUID, for ids that arrive outside a zod schema (cursors, headers). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Year 0000: ISO 8601 has it, Postgres has not. */
const yearZero = (v: string) => v.startsWith('0000');
/** ISO 8601 times that Postgres cannot read: year 0000 and offsets past ±15:59 (ISO allows
 *  ±23:59). Either was a cast failure in SQL, a 422 that named the body instead of the
 *  field. */
function outsidePostgres(v: string): boolean {
  const offsetHours = v.match(/[+-](\d{2}):?\d{2}$/)?.[1];
  return yearZero(v) || (offsetHours !== undefined && Number(offsetHours) > 15);
}
/** More fraction digits than the nine a time has use for: zod takes any number, and
 *  Postgres's reader refuses a long one (its input buffer), a 422 naming the body. */
const tooPrecise = (v: string) => /\.\d{10,}/.test(v);
/** A time with an offset (ISO 8601), in Postgres's range. */
export const IsoTimestamp = z.iso.datetime({ offset: true })
  .refine((v) => !outsidePostgres(v), 'year 1 or later, offset within ±15:59')
  .refine((v) => !tooPrecise(v), 'at most 9 digits of a second');
/** A timestamp in a query string. A `+` offset left unencoded is a space once the query
 *  is decoded (`…T09:00:00 02:00`), refused before; it is read as the `+` it was, as the
 *  voice numbers are (functions/voice/schemas.ts). */
export const QueryTimestamp = z.preprocess(
  (v) => (typeof v === 'string' ? v.replace(/(T[\d:.]+) (\d\d(?::?\d\d)?)$/, '$1+$2') : v),
  IsoTimestamp,
);
/** A calendar date (YYYY-MM-DD), in Postgres's range. */
export const IsoDate = z.iso.date().refine((v) => !yearZero(v), 'year 1 or later (Postgres has no year 0)');

/** A uuid as Postgres spells it (lower case): an id in capitals (Swift's uuidString) names the
 *  same row, and is written and compared the way the database writes it. */
export const Uuid = z.uuid().toLowerCase().openapi({ example: '10000000-0000-4000-8000-000000000001' });

/** A short-lived signed URL to upload an object's bytes to or download them from
 *  (shared/storage.ts): the request to make, with its headers, until it expires. */
export const SignedUrlSchema = z.object({
  url: z.string(),
  method: z.string(),
  expires_at: z.string().openapi({ format: 'date-time' }),
  headers: z.record(z.string(), z.string()),
});

/** With the u flag a pair is one code point: only a half left alone matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Text Postgres can store: no NUL characters, and no lone surrogate (a UTF-16 half
 *  character, which the driver would store as U+FFFD). */
export const Text = z.string()
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
  .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode (no lone surrogate)');

/** How deep JSON may nest in a body's free-form objects: far past any real use, and
 *  short of what a recursive walk (JSON.stringify on older V8, a size count) can take. */
export const MAX_JSON_DEPTH = 64;

/** Whether a value nests objects or arrays more than `limit` deep, found without
 *  recursion: JSON.parse takes 400,000 levels, which a recursive walk cannot. */
export function jsonDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limit) return true;
    for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push([item, depth + 1]);
  }
  return false;
}

/** A JSON object of at most maxBytes, without NUL characters anywhere (jsonb refuses them). */
export const JsonObject = (maxBytes: number) =>
  z.record(z.string(), z.unknown()).superRefine((o, ctx) => {
    if (jsonDeeperThan(o, MAX_JSON_DEPTH)) {
      // Not walked further (a 500 when a walk ran out of stack): refused as it is.
      ctx.addIssue({ code: 'custom', message: `must not nest deeper than ${MAX_JSON_DEPTH} levels`, continue: false });
      return;
    }
    const json = JSON.stringify(o);
    // As the column's check counts it (octet_length of the jsonb's text, which spaces its
    // items and writes numbers out in full): counted as JSON.stringify writes it, a value
    // within the bound here broke the check, a 422 naming no bound.
    if (jsonbTextBytes(o, json) > maxBytes) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${maxBytes} bytes of JSON` });
    }
    // A NUL character is `\u0000` in the JSON text; the six characters `\u0000` written
    // in a string are `\\u0000` there, and are fine.
    if (/(^|[^\\])(\\\\)*\\u0000/.test(json)) {
      ctx.addIssue({ code: 'custom', message: 'must not contain NUL characters' });
    }
    // JSON.stringify writes a lone surrogate as its escape (`\ud800`), a pair as it is.
    if (/(^|[^\\])(\\\\)*\\u[dD][89a-fA-F][0-9a-fA-F]{2}/.test(json)) {
      ctx.addIssue({ code: 'custom', message: 'must be well-formed Unicode (no lone surrogate)' });
    }
  });

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'validation_failed' }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');

/** A response in the common error shape; the description says when it is given. */
export const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorSchema } },
});

/** The error responses every authenticated route can give. */
/** The database unreachable or busy: `database_unavailable`, `retry` (a concurrent update)
 *  or `timeout`, each with Retry-After; the clients' signal to try again. */
export const unavailableError = {
  503: errorResponse(
    'The database is unreachable (`database_unavailable`), a concurrent update gave way (`retry`) or a statement ' +
      "took too long (`timeout`); the token issuer's keys could not be fetched (`issuer_unavailable`); the file " +
      'storage did not answer (`storage_unavailable`, on routes that sign or read files); retry after Retry-After seconds',
  ),
} as const;

/** What any request with a body may be answered before its route looks at it. */
export const bodyErrors = {
  400: errorResponse('`invalid_json`: the body is not valid JSON'),
  413: errorResponse('`payload_too_large`: the body is larger than MAX_BODY_BYTES'),
  415: errorResponse('`unsupported_media_type`: the body is not sent as application/json'),
} as const;

export const commonErrors = {
  400: errorResponse('Malformed request (invalid JSON, missing tenant)'),
  401: errorResponse('Missing, invalid or expired token'),
  403: errorResponse('Authenticated, but not allowed (also plan_limit_reached, feature_not_in_plan)'),
  404: errorResponse('Not found, or not visible to the caller'),
  422: errorResponse('Validation failed; details.fields names each field'),
  429: errorResponse('A rate limit of the plan is spent (rate_limited); retry after Retry-After seconds'),
  ...unavailableError,
} as const;

export const conflictError = {
  409: errorResponse('Conflicts with the current state; a duplicate (already_exists) names its fields in details.fields'),
} as const;

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** A keyset cursor as a query parameter (encodeCursor's output): room for a sort key of
 *  100 characters past ASCII, each a 6-character \u escape, in base64. */
export const CursorParam = Text.max(2048).optional();

/** An integer query parameter, written in decimal digits: z.coerce.number took an empty
 *  value (`?after=`) as 0, and `0x10`, `1e2` or ` 2` as numbers, so a page asked for
 *  "from the start" with an empty cursor silently skipped its first row. */
export const QueryInteger = (min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^-?\d{1,16}$/.test(v) ? Number(v) : v),
    z.number({ error: 'must be a whole number, in decimal digits' }).int().min(min).max(max),
  );

export const PageQuery = z.object({
  limit: QueryInteger(1, 100).default(50),
  cursor: CursorParam,
});

/** Opaque keyset cursor: the sort key of the last row returned. Every character past
 *  ASCII is written as a JSON \u escape first: btoa takes only Latin-1, and a sort key is
 *  any name ("Support – FR", "Łódź", an emoji); JSON.parse reads the escapes back. */
export function encodeCursor(values: unknown[]): string {
  const ascii = JSON.stringify(values).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return btoa(ascii).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

/** A keyset page from the `limit + 1` rows a query read: the first `limit`, and the cursor
 *  of the last of them (its sort key, `key`) when there were more. */
export function keysetPage<T>(rows: T[], limit: number, key: (last: T) => unknown[]): { items: T[]; next: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next: rows.length > limit && last !== undefined ? encodeCursor(key(last)) : null };
}

const plainText = (v: string) => v.length <= 200 && !v.includes('\u0000');

/** The values of a cursor from the query string, or a 422 naming the cursor. `valid`
 *  checks each value (with its position); by default: short text without NUL. */
export function cursorValues(
  cursor: string | undefined,
  arity: number,
  valid: (value: string, index: number) => boolean = plainText,
): string[] | null {
  if (!cursor) return null;
  const values = decodeCursor(cursor, arity);
  if (!values || !values.every(valid)) {
    throw unprocessable('The request is not valid', { fields: [{ field: 'cursor', message: 'Invalid cursor' }] });
  }
  return values;
}

/** Whether a date and time of day exist in the proleptic Gregorian calendar (Postgres's,
 *  with 1 BC as year 0): form alone lets 30 February or hour 25 through. */
export function realDateTime(year: number, bc: boolean, month: number, day: number, h: number, m: number, s: number) {
  const y = bc ? 1 - year : year;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return year >= 1 && days !== undefined && day >= 1 && day <= days && h <= 23 && m <= 59 && s <= 59;
}

/** Days from 1970-01-01 to a date of the proleptic Gregorian calendar, years
 *  astronomical (1 BC is 0): Howard Hinnant's days_from_civil. */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

/** timestamptz's range in seconds from the epoch, UTC: 4714-11-24 00:00:00 BC to
 *  294276-12-31 23:59:59.999999. */
const PG_FIRST_SECOND = daysFromCivil(-4713, 11, 24) * 86400;
const PG_LAST_SECOND = daysFromCivil(294276, 12, 31) * 86400 + 86399;

/** A timestamptz as Postgres writes it as text (`created_at::text`: ISO date style, an
 *  offset, ` BC` before year 1) that Postgres can read back: a cursor's sort key goes into
 *  a `::timestamptz` cast, and one holding 30 February, hour 25, an offset past 15 hours
 *  or an instant past the type's range failed there, a 422 naming the body, not the
 *  cursor. */
const PG_TIMESTAMPTZ = /^(\d{4,6})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d{1,6})?([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?( BC)?$/;
export function isPgTimestamptz(v: string): boolean {
  const m = PG_TIMESTAMPTZ.exec(v);
  if (!m) return false;
  const [year, month, day, h, min, s] = m.slice(1, 7).map(Number);
  const [oh, om, os] = m.slice(8, 11).map((x) => Number(x ?? 0));
  const bc = m[11] !== undefined;
  if (!realDateTime(year, bc, month, day, h, min, s) || oh > 15 || om > 59 || os > 59) return false;
  const utc = daysFromCivil(bc ? 1 - year : year, month, day) * 86400 + h * 3600 + min * 60 + s -
    (m[7] === '-' ? -1 : 1) * (oh * 3600 + om * 60 + os);
  return utc >= PG_FIRST_SECOND && utc <= PG_LAST_SECOND;
}

/** A double precision as Postgres writes it (`number::double precision::text`). */
const PG_FLOAT8 = /^-?\d{1,20}(\.\d{1,20})?(e[-+]\d{1,2})?$/;

/** A keyset cursor of (sort value, id) whose sort value is read back as `type`: each
 *  value is checked for that type here, so a forged one is a 422 naming the cursor. */
export const keysetCursor = (type: 'text' | 'timestamptz' | 'double precision') => (v: string, i: number) =>
  i !== 0
    ? UUID_PATTERN.test(v)
    : type === 'text'
    ? plainText(v)
    : type === 'timestamptz'
    ? isPgTimestamptz(v)
    : PG_FLOAT8.test(v);

/** A keyset cursor of `texts` sort values (short text) then an id: macros by (name,
 *  scope, id), canned responses by (short code, scope, id). */
export const textsThenIdCursor = (texts: number) => (v: string, i: number) => i < texts ? plainText(v) : UUID_PATTERN.test(v);

export function decodeCursor(cursor: string, arity: number): string[] | null {
  try {
    const b64 = cursor.replace(/-/g, '+').replace(/_/g, '/');
    const values = JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
    if (Array.isArray(values) && values.length === arity && values.every((v) => typeof v === 'string')) {
      return values;
    }
  } catch {
    // fall through
  }
  return null;
}

const utf8 = new TextEncoder();
/** How many characters Postgres writes for a number JSON.stringify writes in exponent
 *  form: numeric writes every digit (`1e21` is 22 digits, `1e-7` is `0.0000001`). */
function decimalLength(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (!m) return text.length;
  const digits = m[2] + (m[3] ?? '');
  const point = m[2].length + Number(m[4]); // where the decimal point falls among the digits
  const sign = m[1].length;
  if (point >= digits.length) return sign + point;
  if (point <= 0) return sign + 2 - point + digits.length;
  return sign + digits.length + 1;
}

/** How many bytes `value::jsonb::text` takes in Postgres: JSON.stringify's text (the same
 *  escapes; `json` when the caller has it already), plus the space jsonb writes after
 *  every `:` and `,` between items, with numbers in exponent form counted as Postgres
 *  writes them. */
export function jsonbTextBytes(value: unknown, json?: string): number {
  // Too deep to walk (JsonObject refuses it by name): more than any bound.
  if (jsonDeeperThan(value, MAX_JSON_DEPTH)) return Number.POSITIVE_INFINITY;
  let extra = 0; // bytes Postgres writes beyond JSON.stringify's
  const count = (v: unknown): void => {
    if (typeof v === 'number' && Number.isFinite(v)) {
      const text = JSON.stringify(v);
      extra += decimalLength(text) - text.length;
    } else if (Array.isArray(v)) {
      extra += Math.max(0, v.length - 1);
      v.forEach(count);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      extra += entries.length + Math.max(0, entries.length - 1);
      for (const [, item] of entries) count(item);
    }
  };
  count(value);
  return utf8.encode(json ?? JSON.stringify(value)).length + extra;
}
