// The fields of a ticket that more than one function takes as input: the tickets API's
// create and update, and the voice function's ticket opened from a call. The database
// checks each again (departments and custom fields against the tenant's own).
import { z } from '@hono/zod-openapi';
import { jsonbTextBytes, Text } from './common.ts';

export const PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;
export const PrioritySchema = z.enum(PRIORITIES);
/** A department's key: the tenant keeps its own list (GET /tickets/departments; sales,
 *  support, marketing and technical to begin with), which the database checks. */
export const DepartmentSchema = Text.regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'a department key (lower-case letters, digits, - and _)')
  .openapi({ description: "A department's key, one of the tenant's (GET /tickets/departments)", example: 'support' });
/** A custom field's key. */
export const FieldKey = Text.regex(/^[a-z][a-z0-9_]{0,39}$/, 'lower-case letters, digits and _, starting with a letter');
/** Custom field values by key, as JSON; the database checks each against its field's
 *  type and options. null removes a value. */
export const CustomFieldValues = z
  .record(
    FieldKey,
    z.union([Text.max(1000), z.number(), z.boolean(), z.array(Text.max(100)).max(100), z.null()]),
  )
  .refine((r) => Object.keys(r).length <= 50, 'at most 50 fields')
  // The column's own bound, as it counts (50 lists of 100 options can pass the rest).
  .refine((r) => jsonbTextBytes(r) <= 16_384, 'at most 16384 bytes of JSON in all')
  .openapi({
    description:
      'Values by field key (GET /tickets/custom-fields): text, number, YYYY-MM-DD date, an option, a list of options, true/false; null removes a value',
    example: { plan: 'gold', seats: 25 },
  });
export const Tag = Text.trim().min(1).max(50).regex(/^[^,\s][^,]*$/, 'no commas, no leading space');
// Each once (a repeat counted against the 20 and was stored twice, where the registry
// keeps one): repeats are dropped, the first kept in place.
export const Tags = z.array(Tag).max(20).transform((tags) => [...new Set(tags)]);
