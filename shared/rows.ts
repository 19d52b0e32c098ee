// Rows read with SQL, typed by the generated types (types/database.ts, written by
// `npm run gen:types` from the migrated schema): a column a migration drops, renames or
// makes nullable fails to compile where it is read, and a route's response schema is
// checked against what the query returns.
import type { Database, Json, Tables } from '../types/database.ts';

export type { Json, Tables };
export type TableName = keyof Database['public']['Tables'];
/** A column of a table, by its generated Row. */
export type Column<T extends TableName> = keyof Tables<T> & string;
/** The row of a select list (`tx.columns(list)`) over one table. */
export type Selected<T extends TableName, C extends readonly Column<T>[]> = Pick<Tables<T>, C[number]>;
/** A JSON object column (jsonb checked to be an object). */
export type JsonObject = { [key: string]: Json };
/** A row with columns narrowed to what the schema's CHECK constraints allow (the
 *  generated types say `string` for a text column checked against a list, and `Json` for
 *  a jsonb column checked to be an object). Narrowing only: each type must be one the
 *  generated Row already allows. */
export type Checked<R, N extends { [K in keyof N]: K extends keyof R ? R[K] : never }> = Omit<R, keyof N> & N;
