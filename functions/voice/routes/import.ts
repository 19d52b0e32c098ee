// Customers from a CSV file (agents): validated row by row, phone numbers normalised to
// E.164 (libphonenumber-js) with a default region (the request's, else the tenant's
// `settings.voice_default_region`), upserted by phone in one statement — all or
// nothing. Any bad row, a duplicate phone within the file included, is a 422 listing
// each problem with its line number, and nothing is imported. The body is JSON like
// every body here (`{"csv": "…"}`), bounded by MAX_BODY_BYTES.
import { createRoute, z } from '@hono/zod-openapi';
import { CsvError, parse } from 'csv-parse/sync';
import { type CountryCode, isSupportedCountry, parsePhoneNumberFromString } from 'libphonenumber-js';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { unprocessable } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import { commonErrors, jsonBody, jsonResponse, Text } from '../../../shared/schemas/common.ts';
import type { VoiceHandler } from './common.ts';

export const ImportBody = z.object({
  csv: Text.min(1),
  default_region: z.string().regex(/^[A-Z]{2}$/).optional().openapi({ description: 'ISO 3166 alpha-2, e.g. FR' }),
}).strict();
const ImportResult = z.object({ rows: z.number().int(), inserted: z.number().int(), updated: z.number().int() })
  .openapi('CustomerImport');

const COLUMNS = ['phone', 'name', 'email', 'notes', 'tags', 'recording_consent', 'marketing_consent'] as const;
const MAX_ROWS = 50_000;
const MAX_ERRORS = 100;
const TRUE = new Set(['true', 'yes', 'y', '1']);
const FALSE = new Set(['false', 'no', 'n', '0']);

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
  middleware: needs.activeTenantRole('agent', { write: true, scope: 'customers:write', feature: 'voice' }),
  request: { body: jsonBody(ImportBody) },
  responses: { 200: jsonResponse(ImportResult, 'What the import did'), ...commonErrors },
});

/** The rows of a CSV text, or the problems that keep it from being imported. Exported
 *  for tests of its edge cases. */
export function readCustomersCsv(csv: string, region: CountryCode | undefined): { rows: Row[]; problems: Problem[] } {
  const problems: Problem[] = [];
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parse(csv, {
      bom: true,
      columns: (header: string[]) => header.map((h) => h.trim().toLowerCase()),
      skip_empty_lines: true,
      trim: true,
      info: true,
      to: MAX_ROWS + 1,
    });
  } catch (err) {
    if (err instanceof CsvError) {
      return {
        rows: [],
        problems: [{ line: (err as CsvError & { lines?: number }).lines ?? 0, field: 'csv', message: err.message }],
      };
    }
    throw err;
  }
  if (records.length > MAX_ROWS) {
    return { rows: [], problems: [{ line: 0, field: 'csv', message: `more than ${MAX_ROWS} rows` }] };
  }
  const header = records.length ? Object.keys(records[0].record) : [];
  const unknown = header.filter((h) => !(COLUMNS as readonly string[]).includes(h));
  if (unknown.length) problems.push({ line: 1, field: 'header', message: `unknown columns: ${unknown.join(', ')}` });
  if (records.length && !header.includes('phone')) {
    problems.push({ line: 1, field: 'header', message: 'a phone column is required' });
  }
  if (problems.length) return { rows: [], problems };

  const seen = new Map<string, number>();
  const rows: Row[] = [];
  for (const { record: r, info } of records) {
    const line = info.lines;
    const fail = (field: string, message: string) => problems.length < MAX_ERRORS && problems.push({ line, field, message });
    const parsed = parsePhoneNumberFromString(r.phone ?? '', region ? { defaultCountry: region } : undefined);
    if (!parsed || !parsed.isValid()) {
      fail(
        'phone',
        region || (r.phone ?? '').startsWith('+')
          ? 'is not a valid phone number'
          : 'has no country code and no default region was given',
      );
      continue;
    }
    const phone = parsed.number as string;
    const first = seen.get(phone);
    if (first !== undefined) {
      fail('phone', `duplicates line ${first} (${phone})`);
      continue;
    }
    seen.set(phone, line);
    const bool = (field: 'recording_consent' | 'marketing_consent') => {
      const v = (r[field] ?? '').toLowerCase();
      if (v === '') return null;
      if (TRUE.has(v)) return true;
      if (!FALSE.has(v)) fail(field, 'must be true or false');
      return false;
    };
    const email = r.email || null;
    if (email && !z.email().safeParse(email).success) fail('email', 'is not an e-mail address');
    const tags = (r.tags ?? '').split(/[;|]/).map((t) => t.trim()).filter(Boolean);
    if (tags.length > 50 || tags.some((t) => t.length > 50)) fail('tags', 'at most 50 tags of 50 characters');
    const name = r.name || null;
    if (name && name.length > 200) fail('name', 'at most 200 characters');
    const notes = r.notes || null;
    if (notes && notes.length > 10000) fail('notes', 'at most 10000 characters');
    if ([name, notes, email, ...tags].some((v) => v?.includes('\u0000'))) fail('row', 'must not contain NUL characters');
    rows.push({
      phone,
      name,
      email,
      notes,
      tags,
      recording_consent: bool('recording_consent'),
      marketing_consent: bool('marketing_consent'),
    });
  }
  return { rows, problems };
}

const importCustomers: VoiceHandler<typeof route> = async (c) => {
  const body = c.req.valid('json');
  const tenantId = c.var.access.tenantId;
  const result = await callerDb(c, tenantId, async (tx) => {
    let region = body.default_region;
    if (!region) {
      const [t] = await tx<{ region: string | null }>`
        select settings ->> 'voice_default_region' as region from public.tenants where id = ${tenantId}`;
      region = t?.region ?? undefined;
    }
    if (region && !isSupportedCountry(region)) {
      throw unprocessable('The request is not valid', {
        fields: [{ field: 'default_region', message: 'is not a supported region' }],
      });
    }
    const { rows, problems } = readCustomersCsv(body.csv, region as CountryCode | undefined);
    if (problems.length) {
      throw unprocessable('The file has rows that cannot be imported; nothing was imported', { rows: problems });
    }
    if (!rows.length) return { rows: 0, inserted: 0, updated: 0 };
    // One statement, all or nothing: customers already there are updated with what the
    // file gives (blank cells keep what they have), the others inserted; the consent
    // trigger and the audit trail see every row.
    const [counts] = await tx<{ inserted: number; updated: number }>`
      with src as (
        select * from jsonb_to_recordset(${tx.json(rows)}) as r(phone text, name text, email text, notes text, tags text[],
                                                                  recording_consent boolean, marketing_consent boolean)
      ), upd as (
        update public.voice_customers c set
          name = coalesce(s.name, c.name),
          email = coalesce(s.email, c.email),
          notes = coalesce(s.notes, c.notes),
          tags = case when cardinality(s.tags) > 0 then s.tags else c.tags end,
          recording_consent = coalesce(s.recording_consent, c.recording_consent),
          marketing_consent = coalesce(s.marketing_consent, c.marketing_consent)
        from src s
        where c.tenant_id = ${tenantId} and c.phone = s.phone
        returning c.phone
      ), ins as (
        insert into public.voice_customers (tenant_id, phone, name, email, notes, tags, recording_consent, marketing_consent)
        select ${tenantId}, s.phone, s.name, s.email, s.notes, s.tags, coalesce(s.recording_consent, false),
               coalesce(s.marketing_consent, false)
        from src s where not exists (select 1 from upd u where u.phone = s.phone)
        returning 1
      )
      select (select count(*) from ins)::int as inserted, (select count(*) from upd)::int as updated`;
    return { rows: rows.length, ...counts };
  });
  return c.json(result, 200);
};

export const customerImport = createRouter().openapi(route, importCustomers);
