// A database as a hosted project's, where the `vector` extension exists: PGlite
// (PostgreSQL 18 compiled to WebAssembly, from npm) with the real pgvector
// (@electric-sql/pglite-pgvector, 0.8), after the platform bootstrap, every migration
// (each file as one transaction, as `supabase db push` applies them) and the seed. Used by
// tests/deploy/hosted-vector*.test.ts. Not a hosted project in every respect: the
// migrations run as the superuser (hosted demotes postgres), on Postgres 18, without
// pg_cron and pg_net.
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bootstrapFile, root, seedFile } from '../../scripts/stack.mjs';

export async function hostedDatabase(): Promise<PGlite> {
  const pg = await PGlite.create({ extensions: { vector } });
  await pg.exec(readFileSync(bootstrapFile, 'utf8'));
  const dir = path.join(root, 'supabase', 'migrations');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    try {
      await pg.exec(`begin;\n${readFileSync(path.join(dir, file), 'utf8')}\ncommit;`);
    } catch (err) {
      throw new Error(`${file} on a database with vector: ${(err as Error).message}`);
    }
  }
  await pg.exec(readFileSync(seedFile, 'utf8'));
  return pg;
}

/** The database served over the wire protocol on a free loopback port
 *  (@electric-sql/pglite-socket), so the functions' own driver and pools reach it: one
 *  session, shared by the connections in turn. A transaction holds it to its end, but
 *  outside one each protocol message is queued on its own, so two connections' statements
 *  may interleave between Parse and Bind: drive it one request at a time, and test
 *  concurrency and locks on the local Postgres, not here. */
export async function serve(pg: PGlite): Promise<{ url: string; stop: () => Promise<void> }> {
  const server = new PGLiteSocketServer({ db: pg, host: '127.0.0.1', port: 0, maxConnections: 32 });
  await server.start();
  const address = server.getServerConn();
  return { url: `postgresql://postgres:postgres@${address}/postgres`, stop: () => server.stop() };
}

/** Embeddings as a model gives them: dense, from a seeded generator (the same every run):
 *  a query, and directions near it (the larger `spread`, the farther). */
export function embeddingSpace(seed: number, dimensions: number) {
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
  const query = Array.from({ length: dimensions }, random);
  return { query, near: (spread: number) => query.map((x) => x + spread * random()) };
}

/** The cosine distance pgvector's `<=>` computes: the tests' oracle. */
export function cosineDistance(a: number[], b: number[]): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / Math.sqrt(na * nb);
}
