// Customers from a CSV file (agents): validated row by row, phone numbers normalised to
// E.164 (libphonenumber-js) with a default region (the request's, else the tenant's
// `settings.voice_default_region`), upserted by phone — all or nothing. Any bad row, a
// duplicate phone within the file included, is a 422 listing each problem with its line
// number, and nothing is imported.
//
// The file is sent as it is (`Content-Type: text/csv`, region in the query), capped by
// MAX_IMPORT_BODY_BYTES (32 MiB; shared/limits.ts), not MAX_BODY_BYTES. Its bytes are
// read whole (kept as the chunks they came in) once the caller's standing is checked and
// before the request's transaction opens (`bodyFirst`): an upload over a slow link held
// a connection of the pool the call path shares, and the locks of the batches written so
// far, for as long as it took to arrive. The bytes then go through a strict UTF-8 decoder (a Windows-1252
// file is refused, not stored with U+FFFD in its names) and csv-parse's stream parser
// (its Node stream: the WHATWG one, csv-parse/stream, costs a promise per row and took
// three times the CPU on 50,000 rows); each row is checked as it comes, and the valid
// rows go to the database in batches of BATCH_ROWS (one statement over unnest'ed arrays
// each), so 50,000 rows never sit in memory as objects at once — only the phones seen,
// to find duplicates. A problem stops the writing (the transaction is rolled back at the
// end) but not the checking, up to MAX_ERRORS problems. One import at a time per tenant
// (a transaction-scoped advisory lock, tried, not waited for: a queued import would hold
// a database connection as long as the ones ahead of it take): another is
// 409 import_in_progress with Retry-After. Two at once with a new number in common met on
// the unique index, one failing whole with a 409 naming no line. The older
// JSON form (`{"csv": "…"}`) is still taken, within MAX_BODY_BYTES, and read the same way.
import { createRoute, z } from '@hono/zod-openapi';
import { CsvError, parse } from 'csv-parse';
import { Readable } from 'node:stream';
import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString, validatePhoneNumberLength } from 'libphonenumber-js';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import type { Tx } from '../../../shared/db.ts';
import { ApiError, badRequest, conflict, unprocessable } from '../../../shared/errors.ts';
import { createRouter, validationError } from '../../../shared/http.ts';
import { maxImportBodyBytes, mediaTypeOf, type StreamedBody } from '../../../shared/limits.ts';
import { commonErrors, errorResponse, jsonResponse, Text } from '../../../shared/schemas/common.ts';
import { characterCount, firstCharacters } from '../../../shared/text.ts';
import { CUSTOMER_MAX, customerTags, E164_PATTERN } from '../schemas.ts';
import type { VoiceHandler } from './common.ts';

const Region = z.string().regex(/^[A-Z]{2}$/).openapi({ description: 'ISO 3166 alpha-2, e.g. FR' });
export const ImportBody = z.object({ csv: Text.min(1), default_region: Region.optional() }).strict();
const ImportQuery = z.object({
  default_region: Region.optional().openapi({ param: { name: 'default_region', in: 'query' } }),
});
const ImportResult = z.object({
  rows: z.number().int(),
  inserted: z.number().int(),
  updated: z.number().int().openapi({ description: 'Customers already there that the file changed' }),
  unchanged: z.number().int().openapi({ description: 'Customers already there exactly as the file has them' }),
})
  .openapi('CustomerImport');

/** The import's body as a stream (app.ts declares it to createApp). */
export const importStream: StreamedBody = {
  method: 'POST',
  path: '/customers/import',
  mediaTypes: ['text/csv'],
  maxBytes: maxImportBodyBytes,
};

const COLUMNS = ['phone', 'name', 'email', 'notes', 'tags', 'recording_consent', 'marketing_consent'] as const;
const MAX_ROWS = 50_000;
const MAX_ERRORS = 100;
/** One record's size, as csv-parse measures it (64 KiB): its fields' own limits add up to
 *  ~16,000 characters (notes 10,000, 50 tags of 50…). Without a bound, one unclosed quote
 *  made the rest of a file one field, held whole and echoed back in the parser's message. */
const MAX_RECORD_SIZE = 65_536;
/** What a phone cell may hold: a number as people write it, not a sentence, two
 *  numbers or an extension (libphonenumber-js finds a number inside any text). Spaces and
 *  dashes as spreadsheets write them (no-break spaces, typographic dashes) count as such. */
const PHONE_CELL = /^[+0-9 ()./-]*$/;
const phoneCell = (cell: string) => cell.replace(/[\u00a0\u2007\u202f]/g, ' ').replace(/[\u2010-\u2015]/g, '-');
/** How long a refused import is told to wait before trying again. */
const IMPORT_RETRY_AFTER_SECONDS = 5;
/** A problem's message quotes at most this much of the file. */
const QUOTE_MAX = 200;
/** Rows per statement: big enough that 50,000 rows are 25 round trips, small enough that
 *  a batch's arrays and its statement stay a few hundred kilobytes. */
export const BATCH_ROWS = 2_000;
// Built once: constructing a zod schema per row was a sixth of the import's CPU.
const Email = z.email();
const TRUE = new Set(['true', 'yes', 'y', '1']);
const FALSE = new Set(['false', 'no', 'n', '0']);

const hasNul = (v: string | null) => v !== null && v.includes('\u0000');

type Problem = { line: number; field: string; message: string };
type Row = {
  phone: string;
  name: string | null;
  email: string | null;
  notes: string | null;
  tags: string[];
  /** Null where the file leaves it blank: false for a new customer, unchanged for one already there. */
  recording_consent: boolean | null;
  marketing_consent: boolean | null;
};

const route = createRoute({
  method: 'post',
  path: '/customers/import',
  summary: 'Import customers from CSV (agents): all or nothing, upserting by phone; per-row errors with line numbers',
  ...apiKeyScope('customers:write'),
  middleware: needs.activeTenantRole('agent', { write: true, scope: 'customers:write', feature: 'voice', bodyFirst: true }),
  request: {
    query: ImportQuery,
    // The JSON form is documented by reference, not declared as a zod schema: zod-openapi
    // would then parse every required body as JSON, the CSV one too. The handler checks it.
    body: {
      required: true,
      description: 'The file as `text/csv` (up to MAX_IMPORT_BODY_BYTES), or `{"csv": "…"}` as JSON ' +
        '(up to MAX_BODY_BYTES). Columns: ' + 'phone (required), name, email, notes, tags, recording_consent, marketing_consent.',
      content: {
        'text/csv': { schema: z.string().openapi({ example: 'phone,name\n+14155550123,Jane Doe\n' }) },
        'application/json': { schema: { $ref: '#/components/schemas/CustomerImportBody' } },
      },
    },
  },
  responses: {
    200: jsonResponse(ImportResult, 'What the import did'),
    ...commonErrors,
    400: errorResponse(
      'No tenant named, or two different ones (tenant_required, tenant_mismatch); `invalid_json` (the JSON form); ' +
        '`body_incomplete`: the upload broke off before its end',
    ),
    408: errorResponse('The body stopped arriving for BODY_IDLE_TIMEOUT_MS (request_timeout)'),
    409: errorResponse(
      'Another import into this tenant is running (import_in_progress; retry after Retry-After), or a number the ' +
        'file adds was added at the same moment by another request (already_exists), or its customers kept being ' +
        'renumbered or deleted while it ran (customers_changed); nothing was imported',
    ),
    413: errorResponse('The body is larger than MAX_IMPORT_BODY_BYTES (payload_too_large)'),
    415: errorResponse('Neither text/csv nor application/json'),
    422: errorResponse(
      'The file has rows that cannot be imported: details.rows lists each problem (line, field, message), up to 100; ' +
        'nothing was imported. A bad default_region: details.fields',
    ),
    503: errorResponse('The database is busy or unreachable; retry after Retry-After'),
  },
});

/** Checks one record (a row of the file) and returns the customer it gives, or null
 *  after reporting its problems through `fail`. `seen` maps each phone to its first line. */
function checkRow(
  r: Record<string, string | undefined>,
  line: number,
  region: CountryCode | undefined,
  seen: Map<string, number>,
  fail: (field: string, message: string) => void,
): Row | null {
  const cell = phoneCell(r.phone ?? '');
  if (cell.trim() === '') {
    fail('phone', 'is required');
    return null;
  }
  if (!PHONE_CELL.test(cell)) {
    fail('phone', 'must be one phone number (digits, spaces, + ( ) . / -), without an extension');
    return null;
  }
  const parsed = parsePhoneNumberFromString(cell, region ? { defaultCountry: region } : undefined);
  // The database's own E.164 rule too: libphonenumber-js takes some short numbers
  // (+431117, 6 digits) that the column refuses. A number it does not know, written in
  // E.164, is kept as given, as the API keeps it (CanonicalPhone): a customer made
  // through the API, exported and imported again, is not a bad row. Not a cell that is
  // two numbers run together (`+1 415 555 0123 / 0124` is 15 digits, E.164 in form): one
  // with a slash (people's "or"), or longer than its country's numbers.
  const given = cell.trim().startsWith('+') && !cell.includes('/') && validatePhoneNumberLength(cell) !== 'TOO_LONG'
    ? cell.replace(/[ ()./-]/g, '')
    : '';
  const phone = parsed?.isValid() && E164_PATTERN.test(parsed.number)
    ? parsed.number as string
    : E164_PATTERN.test(given)
    ? given
    : undefined;
  if (phone === undefined) {
    fail(
      'phone',
      region || cell.startsWith('+') ? 'is not a valid phone number' : 'has no country code and no default region was given',
    );
    return null;
  }
  const first = seen.get(phone);
  if (first !== undefined) {
    fail('phone', `duplicates line ${first} (${phone})`);
    return null;
  }
  seen.set(phone, line);
  let ok = true;
  const problem = (field: string, message: string) => {
    ok = false;
    fail(field, message);
  };
  const bool = (field: 'recording_consent' | 'marketing_consent') => {
    const v = (r[field] ?? '').toLowerCase();
    if (v === '') return null;
    if (TRUE.has(v)) return true;
    if (!FALSE.has(v)) problem(field, 'must be true or false');
    return false;
  };
  const email = r.email || null;
  // Lengths in characters, as the API's schemas and the columns count them: `.length`
  // counted an emoji twice, so a name the API took was refused here at half its length.
  const longer = (v: string | null, max: number) => v !== null && v.length > max && characterCount(v) > max;
  if (longer(email, CUSTOMER_MAX.email)) problem('email', `at most ${CUSTOMER_MAX.email} characters`);
  else if (email && !Email.safeParse(email).success) problem('email', 'is not an e-mail address');
  const tags = r.tags ? customerTags(r.tags.split(/[;|]/)) : [];
  if (tags.length > CUSTOMER_MAX.tags || tags.some((t) => longer(t, CUSTOMER_MAX.tag))) {
    problem('tags', `at most ${CUSTOMER_MAX.tags} tags of ${CUSTOMER_MAX.tag} characters`);
  }
  const name = r.name || null;
  if (longer(name, CUSTOMER_MAX.name)) problem('name', `at most ${CUSTOMER_MAX.name} characters`);
  const notes = r.notes || null;
  if (longer(notes, CUSTOMER_MAX.notes)) problem('notes', `at most ${CUSTOMER_MAX.notes} characters`);
  if (hasNul(name) || hasNul(notes) || hasNul(email) || tags.some(hasNul)) problem('row', 'must not contain NUL characters');
  const row = {
    phone,
    name,
    email,
    notes,
    tags,
    recording_consent: bool('recording_consent'),
    marketing_consent: bool('marketing_consent'),
  };
  return ok ? row : null;
}

/** A text[] literal of the tags (one array per row, sent as text: unnest cannot take
 *  arrays of arrays of different lengths). */
const arrayLiteral = (items: string[]) => `{${items.map((t) => `"${t.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;

type Counts = { inserted: number; updated: number; unchanged: number };

/** One batch, one statement: customers already there are updated with what the file
 *  gives (blank cells keep what they have) — only those where that changes something, so
 *  importing a file again writes nothing, no audit row included —, the others inserted;
 *  the consent trigger and the audit trail see every row written. Phones are unique
 *  across batches (checked before). A blank cell is filled from the row as the update
 *  finds it (`c`), not from the statement's snapshot: a row edited while the import
 *  waited for it is re-read before the write (READ COMMITTED re-checks the row, not the
 *  values a CTE computed), so an edit made meanwhile — a consent withdrawn — is kept. */
async function upsertBatch(tx: Tx, tenantId: string, rows: Row[]): Promise<Counts> {
  let { found, ...total } = await upsertOnce(tx, tenantId, rows);
  // A customer the statement found by phone but that someone renumbered or deleted before
  // the statement could lock it (the import's lock keeps other imports out, not people's
  // edits) is left alone by the update's re-check, and its row of the file was not
  // written: written again, to whoever has that number now, or inserted. Asked by id, so
  // a number moved to another customer meanwhile is not taken for the row written. Each
  // round needs another such edit; three are plenty.
  for (let round = 0; round < 3; round++) {
    const [{ stale }] = await tx<{ stale: string[] }>`
      select coalesce(array_agg(f.phone), '{}') as stale
      from unnest(${found.ids}::uuid[], ${found.phones}::text[]) f(id, phone)
      where not exists (select 1 from public.voice_customers c
                        where c.tenant_id = ${tenantId} and c.id = f.id and c.phone = f.phone)`;
    if (!stale.length) return total;
    const again = rows.filter((r) => stale.includes(r.phone));
    const next = await upsertOnce(tx, tenantId, again);
    total.unchanged += next.unchanged - again.length;
    total.inserted += next.inserted;
    total.updated += next.updated;
    found = next.found;
  }
  throw conflict('customers_changed', 'Customers of this file kept changing while it was imported; send it again');
}

/** One batch's statement: its counts, and the customers it found by phone (id, phone). */
async function upsertOnce(
  tx: Tx,
  tenantId: string,
  rows: Row[],
): Promise<Counts & { found: { ids: string[]; phones: string[] } }> {
  const col = <K extends keyof Row>(k: K) => rows.map((r) => r[k]);
  const [row] = await tx<Counts & { found_ids: string[]; found_phones: string[] }>`
    with src as (
      select * from unnest(${col('phone')}::text[], ${col('name')}::text[], ${col('email')}::text[], ${col('notes')}::text[],
                           ${rows.map((r) => arrayLiteral(r.tags))}::text[], ${col('recording_consent')}::boolean[],
                           ${col('marketing_consent')}::boolean[])
        as r(phone, name, email, notes, tags, recording_consent, marketing_consent)
    ), found as (
      select c.id, s.* from src s join public.voice_customers c on c.tenant_id = ${tenantId} and c.phone = s.phone
    ), upd as (
      update public.voice_customers c set name = coalesce(f.name, c.name), email = coalesce(f.email, c.email),
        notes = coalesce(f.notes, c.notes), tags = case when f.tags <> '{}' then f.tags::text[] else c.tags end,
        recording_consent = coalesce(f.recording_consent, c.recording_consent),
        marketing_consent = coalesce(f.marketing_consent, c.marketing_consent)
      from found f
      -- The phone again: re-checked on the row as it is once locked, so a customer
      -- renumbered meanwhile is not given another number's data.
      where c.tenant_id = ${tenantId} and c.id = f.id and c.phone = f.phone
        and row(coalesce(f.name, c.name), coalesce(f.email, c.email), coalesce(f.notes, c.notes),
                case when f.tags <> '{}' then f.tags::text[] else c.tags end,
                coalesce(f.recording_consent, c.recording_consent), coalesce(f.marketing_consent, c.marketing_consent))
            is distinct from row(c.name, c.email, c.notes, c.tags, c.recording_consent, c.marketing_consent)
      returning 1
    ), ins as (
      insert into public.voice_customers (tenant_id, phone, name, email, notes, tags, recording_consent, marketing_consent)
      select ${tenantId}, s.phone, s.name, s.email, s.notes, s.tags::text[], coalesce(s.recording_consent, false),
             coalesce(s.marketing_consent, false)
      from src s where not exists (select 1 from found f where f.phone = s.phone)
      returning 1
    )
    select (select count(*) from ins)::int as inserted, (select count(*) from upd)::int as updated,
           (select count(*) from found)::int - (select count(*) from upd)::int as unchanged,
           (select coalesce(array_agg(f.id order by f.phone), '{}') from found f) as found_ids,
           (select coalesce(array_agg(f.phone order by f.phone), '{}') from found f) as found_phones`;
  const { found_ids, found_phones, ...counts } = row;
  return { ...counts, found: { ids: found_ids, phones: found_phones } };
}

/** The body's bytes as UTF-8 text, refusing bytes that are not (TextDecoder's fatal
 *  mode): a NotUtf8 naming the line of the first bad byte. */
class NotUtf8 extends Error {
  constructor(readonly line: number) {
    super('is not UTF-8 text: save the file as "CSV UTF-8"');
  }
}
const newlinesIn = (text: string) => {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
};

const concat = (a: Uint8Array, b: Uint8Array) => {
  const all = new Uint8Array(a.length + b.length);
  all.set(a);
  all.set(b, a.length);
  return all;
};

/** The bytes at the end of a chunk that begin a UTF-8 sequence the chunk does not finish
 *  (what a streaming decoder holds for the next chunk): at most three. */
function unfinishedTail(bytes: Uint8Array): Uint8Array {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back];
    if (b < 0x80) break;
    if (b >= 0xc0) {
      const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return length > back ? bytes.slice(bytes.length - back) : new Uint8Array();
    }
  }
  return new Uint8Array();
}

/** Where the first byte that is not UTF-8 is (a sequence cut off by the end counts), or
 *  the length when there is none: the Unicode standard's well-formed byte sequences. */
function firstBadByte(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    const length = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (!length || i + length > bytes.length) return i;
    // The second byte's range is narrower after E0, ED, F0 and F4 (no overlong form, no
    // surrogate, nothing past U+10FFFF).
    const [lo, hi] = b === 0xe0
      ? [0xa0, 0xbf]
      : b === 0xed
      ? [0x80, 0x9f]
      : b === 0xf0
      ? [0x90, 0xbf]
      : b === 0xf4
      ? [0x80, 0x8f]
      : [0x80, 0xbf];
    if (bytes[i + 1] < lo || bytes[i + 1] > hi) return i;
    for (let k = 2; k < length; k++) if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return i;
    i += length;
  }
  return bytes.length;
}

/** The body as UTF-8 text with its line ends as LF. csv-parse counts a line for each CR
 *  and each LF inside a quoted field, so a CRLF in a cell (Windows tools write them) put
 *  every later record's line one further; with LF alone, its count is the file's lines,
 *  CR-only files (Excel for Mac) included. A cell's CRLF, or lone CR, is stored as LF. */
function utf8WithLf(): TransformStream<Uint8Array, string> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let linesBefore = 0;
  // A CR that ended the last chunk: a line end whatever follows, but one line with an LF
  // that starts the next.
  let pendingCr = false;
  let held: Uint8Array = new Uint8Array();
  const afterPendingCr = (text: string) => (pendingCr ? '\r' : '') + text;
  const toLf = (text: string) => text.replace(/\r\n?/g, '\n');
  const lf = (text: string, last: boolean) => {
    let t = afterPendingCr(text);
    pendingCr = !last && t.endsWith('\r');
    if (pendingCr) t = t.slice(0, -1);
    t = toLf(t);
    linesBefore += newlinesIn(t);
    return t;
  };
  const decode = (bytes?: Uint8Array) => {
    let text: string;
    try {
      text = bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode();
    } catch {
      // Where: the bytes the decoder held from the last chunk and this one, up to the
      // first that is not UTF-8, counted as lines.
      const all = concat(held, bytes ?? new Uint8Array());
      const good = new TextDecoder().decode(all.subarray(0, firstBadByte(all)));
      throw new NotUtf8(linesBefore + newlinesIn(toLf(afterPendingCr(good))) + 1);
    }
    if (bytes) held = unfinishedTail(bytes.length >= 3 ? bytes : concat(held, bytes));
    return lf(text, !bytes);
  };
  return new TransformStream({
    transform(bytes, controller) {
      const text = decode(bytes);
      if (text) controller.enqueue(text);
    },
    flush(controller) {
      const text = decode();
      if (text) controller.enqueue(text);
    },
  });
}
type Parsed = { record: string[]; info: { lines: number; empty_lines: number } };

/** Every record the parser has ready, at once: one wait per chunk of the body instead of
 *  a promise per record (the stream's async iterator). Measured against the iterator,
 *  two runs each, an unchanged 50,000-row file: 1.06–1.28 s of the function's JavaScript
 *  thread against 1.63–1.74 s (new customers 1.53–1.58 s against 1.69–2.07 s). Empty
 *  once the file is done; throws what the parser failed with (a CsvError, or the body's
 *  own 413 or 408). */
async function readyRecords(parser: Readable): Promise<Parsed[]> {
  for (;;) {
    // The records parsed before a failure first: their problems are reported too, and the
    // failing record's line is counted from the last of them.
    const ready: Parsed[] = [];
    for (let r = parser.read() as Parsed | null; r !== null; r = parser.read() as Parsed | null) ready.push(r);
    if (ready.length) return ready;
    if (parser.errored) throw parser.errored;
    if (parser.readableEnded || parser.destroyed) return ready;
    await new Promise<void>((resolve) => {
      const events = ['readable', 'end', 'error', 'close'] as const;
      const settle = () => {
        for (const e of events) parser.off(e, settle);
        resolve();
      };
      for (const e of events) parser.on(e, settle);
    });
  }
}

/** Reads a CSV byte stream and imports it in `tx`, batch by batch; throws the 422 listing
 *  every problem (up to MAX_ERRORS) when any row is bad, which rolls everything back.
 *  A 413 or 408 from the body stream (shared/limits.ts) passes through as it is. */
export async function importCustomersCsv(
  tx: Tx,
  tenantId: string,
  source: ReadableStream<Uint8Array>,
  region: CountryCode | undefined,
): Promise<{ rows: number } & Counts> {
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  const total = { rows: 0, inserted: 0, updated: 0, unchanged: 0 };
  let batch: Row[] = [];
  const flush = async () => {
    if (batch.length && !problems.length) {
      const counts = await upsertBatch(tx, tenantId, batch);
      total.inserted += counts.inserted;
      total.updated += counts.updated;
      total.unchanged += counts.unchanged;
    }
    batch = [];
  };
  const input = Readable.fromWeb(
    source.pipeThrough(utf8WithLf()) as unknown as import('node:stream/web').ReadableStream<string>,
  );
  // Records as arrays, the first one the header: csv-parse's `columns` (an object per
  // record, a defineProperty per field) was half of the parsing's CPU. Every record must
  // have as many fields as the header (csv-parse checks it against the first record).
  const parser = input.pipe(parse({
    bom: true,
    max_record_size: MAX_RECORD_SIZE,
    skip_empty_lines: true,
    trim: true,
    info: true,
  }));
  // pipe() does not pass the body's own failure (413 past the cap, 408 idle) on.
  input.once('error', (err) => parser.destroy(err));
  // The parser's failure is read from parser.errored (readyRecords). Without a listener
  // of its own, a failure that came while no read was waiting was an 'error' event
  // nobody heard: an uncaught exception of the whole process. A file cut off inside a
  // character (its last bytes not UTF-8, found when the stream closes) did that.
  parser.on('error', () => {});
  try {
    // Where each known column is in the file's records (-1: absent).
    let at: number[] | undefined;
    // csv-parse tells the line a record ENDS on; a quoted field may span lines, so a
    // record's own line is the one after the previous record's end and the blank lines
    // skipped since.
    let endOfPrevious = 0;
    let blanksBefore = 0;
    reading: for (;;) {
      let ready: Parsed[];
      try {
        ready = await readyRecords(parser);
      } catch (err) {
        if (err instanceof NotUtf8) {
          problems.push({ line: err.line, field: 'csv', message: err.message });
          break;
        }
        if (!(err instanceof CsvError)) throw err;
        const message = err.code === 'CSV_MAX_RECORD_SIZE'
          ? `a record larger than ${MAX_RECORD_SIZE / 1024} KiB (an unclosed quote?)`
          : firstCharacters(err.message, QUOTE_MAX);
        // The line the failing record starts on, as for any record (below): csv-parse's
        // own `lines` is where it stopped, the record's last line.
        const skipped = (err as CsvError & { empty_lines?: number }).empty_lines ?? blanksBefore;
        problems.push({ line: endOfPrevious + 1 + (skipped - blanksBefore), field: 'csv', message });
        break;
      }
      if (!ready.length) break;
      for (const { record, info } of ready) {
        const line = endOfPrevious + 1 + (info.empty_lines - blanksBefore);
        endOfPrevious = info.lines;
        blanksBefore = info.empty_lines;
        // A row of empty cells (",,," — spreadsheets end their exports with them) is no row.
        if (record.every((cell) => cell === '')) continue;
        if (!at) {
          const header = record.map((h) => h.trim().toLowerCase());
          // A column without a name (`phone,name,`: spreadsheets export trailing ones) is
          // no column; its cells are not read.
          const named = header.filter((h) => h !== '');
          const unknown = named.filter((h) => !(COLUMNS as readonly string[]).includes(h));
          const twice = COLUMNS.filter((name) => header.indexOf(name) !== header.lastIndexOf(name));
          // One cell naming columns between semicolons: a spreadsheet set to a language
          // whose lists use them (French, German Excel). Said so, rather than "unknown".
          const semicolons = header.length === 1 && header[0].includes(';') &&
            header[0].split(';').map((h) => h.trim()).includes('phone');
          if (semicolons) {
            problems.push({
              line,
              field: 'header',
              message: 'the columns are separated by semicolons: save the file as CSV with commas ("CSV UTF-8")',
            });
            break reading;
          }
          if (unknown.length) {
            const listed = unknown.slice(0, 10).map((h) => firstCharacters(h, 50)).join(', ');
            problems.push({ line, field: 'header', message: `unknown columns: ${listed}${unknown.length > 10 ? ', …' : ''}` });
          }
          if (twice.length) problems.push({ line, field: 'header', message: `columns named twice: ${twice.join(', ')}` });
          if (!header.includes('phone')) problems.push({ line, field: 'header', message: 'a phone column is required' });
          if (problems.length) break reading;
          at = COLUMNS.map((name) => header.indexOf(name));
          continue;
        }
        const r: Record<string, string | undefined> = {};
        for (let i = 0; i < COLUMNS.length; i++) if (at[i] >= 0) r[COLUMNS[i]] = record[at[i]];
        if (++total.rows > MAX_ROWS) {
          problems.push({ line, field: 'csv', message: `more than ${MAX_ROWS} rows` });
          break reading;
        }
        const row = checkRow(
          r,
          line,
          region,
          seen,
          (field, message) => problems.push({ line, field, message }),
        );
        if (problems.length >= MAX_ERRORS) break reading;
        if (row && !problems.length) {
          batch.push(row);
          if (batch.length >= BATCH_ROWS) await flush();
        }
      }
    }
    // An empty body has not even the header: not a file of customers.
    if (!at && !problems.length) {
      problems.push({ line: 1, field: 'header', message: 'the file is empty: a header with a phone column is required' });
    }
    if (problems.length) {
      throw unprocessable('The file has rows that cannot be imported; nothing was imported', {
        rows: problems.slice(0, MAX_ERRORS),
      });
    }
    await flush();
    return total;
  } finally {
    // Stops reading what is left of a refused file (and releases the body).
    parser.destroy();
    input.destroy();
  }
}

const importCustomers: VoiceHandler<typeof route> = async (c) => {
  const tenantId = c.var.access.tenantId;
  let source: ReadableStream<Uint8Array>;
  let requested: string | undefined = c.req.valid('query').default_region;
  if (mediaTypeOf(c.req.header('content-type')) === 'text/csv') {
    source = c.req.raw.body ?? new Blob([]).stream();
  } else {
    let json: unknown = {};
    // No body at all is the 422 naming csv; one that is not JSON a 400 (a body that broke
    // off, went past its limit or is not UTF-8 keeps its own error).
    if (c.req.header('content-type')) {
      try {
        json = await c.req.json();
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw badRequest('invalid_json', 'The request body is not valid JSON');
      }
    }
    const body = ImportBody.safeParse(json);
    if (!body.success) throw validationError(body.error.issues, 'json');
    source = new Blob([body.data.csv]).stream();
    requested = body.data.default_region ?? requested;
  }
  const result = await callerDb(c, tenantId, async (tx) => {
    // One import at a time per tenant (see the top of this file).
    const [{ locked }] = await tx<{ locked: boolean }>`
      select pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtextextended(${`voice_customers_import:${tenantId}`}, 0)) as locked`;
    if (!locked) {
      throw new ApiError(409, 'import_in_progress', 'Another import into this tenant is running; retry once it is done', {
        retry_after_seconds: IMPORT_RETRY_AFTER_SECONDS,
      }, { 'Retry-After': String(IMPORT_RETRY_AFTER_SECONDS) });
    }
    let region = requested;
    // Which of the two named the region: a bad one is the caller's to fix where it is.
    let field = 'default_region';
    if (!region) {
      const [t] = await tx<{ region: string | null }>`
        select settings ->> 'voice_default_region' as region from public.tenants where id = ${tenantId}`;
      region = t?.region ?? undefined;
      field = 'settings.voice_default_region';
    }
    if (region && !isSupportedCountry(region)) {
      throw unprocessable('The request is not valid', {
        fields: [{
          field,
          message: field === 'default_region'
            ? 'is not a supported region'
            : "the tenant's default region is not a supported one: name one with ?default_region= or correct the setting",
        }],
      });
    }
    return await importCustomersCsv(tx, tenantId, source, region as CountryCode | undefined);
  });
  return c.json(result, 200);
};

export const customerImport = createRouter().openapi(route, importCustomers);
customerImport.openAPIRegistry.register('CustomerImportBody', ImportBody);
