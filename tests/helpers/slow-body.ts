// A request body that sends its first part, then waits to be released before sending the
// rest: the shape of a slow client, for tests that look at what the server holds while a
// body is still arriving.
import type { Sql } from './db.ts';

export function stalledBody(first: string, rest: string) {
  let release!: () => void;
  let pulled = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!pulled) {
        pulled = true;
        controller.enqueue(new TextEncoder().encode(first));
        await new Promise<void>((r) => (release = r));
        return;
      }
      controller.enqueue(new TextEncoder().encode(rest));
      controller.close();
    },
  });
  return {
    stream,
    /** Resolves once the first part was read, and a moment more for the server to go on. */
    async firstPartRead(settleMs = 200) {
      while (!pulled) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, settleMs));
    },
    release: () => release(),
  };
}

/** How many connections to this database are idle inside a transaction. */
export async function idleInTransaction(sql: Sql): Promise<number> {
  const [{ n }] = await sql`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and state like 'idle in transaction%'`;
  return n as number;
}
