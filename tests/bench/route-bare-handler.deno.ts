// The voice bench's bare handler for /route (tests/bench/voice.bench.ts): Deno.serve,
// the same driver (`pg`, through Deno's Node compatibility) and pool size as
// shared/db.ts, and the statement the function's batches run for each lookup
// (private.voice_route_answer), one per request; no router, validation, credential
// check, batching or error shape. The function's distance to it is what those cost, less
// what batching saves: it reaches more than this at 64 clients.
// Run by the bench through tests/helpers/functions-server.ts (`entry`); not deployed.
// @ts-types="npm:@types/pg@^8.23.1"
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: Deno.env.get('SUPABASE_DB_URL'),
  // The size of the pool the function's /route runs on (shared/db.ts: the call path's).
  max: Number(Deno.env.get('DB_POOL_MAX_CALL_PATH') ?? 4),
  application_name: 'route-bare-handler',
});

Deno.serve(async (req) => {
  const query = new URL(req.url).searchParams;
  const { rows } = await pool.query<{ answer: string }>(
    'select private.voice_route_answer($1, $2)::text as answer',
    [query.get('to'), query.get('from')],
  );
  return new Response(rows[0].answer, { headers: { 'content-type': 'application/json' } });
});
