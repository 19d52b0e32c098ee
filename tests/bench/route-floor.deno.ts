// The voice bench's floor for /route (tests/bench/voice.bench.ts): the least a Deno
// function can do to answer it. Deno.serve, the same driver (`pg`, through Deno's Node
// compatibility) and pool size as shared/db.ts, and the route's own statement
// (private.voice_route_answer), one per request; no router, validation, credential
// check, batching or error shape. What the real function reaches is read against this:
// whatever it cannot reach here, on this machine, no handler code would.
// Run by the bench through tests/helpers/functions-server.ts (`entry`); not deployed.
// @ts-types="npm:@types/pg@^8.23.1"
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: Deno.env.get('SUPABASE_DB_URL'),
  max: Number(Deno.env.get('DB_POOL_MAX') ?? 4),
  application_name: 'route-floor',
});

Deno.serve(async (req) => {
  const query = new URL(req.url).searchParams;
  const { rows } = await pool.query<{ answer: string }>(
    'select private.voice_route_answer($1, $2)::text as answer',
    [query.get('to'), query.get('from')],
  );
  return new Response(rows[0].answer, { headers: { 'content-type': 'application/json' } });
});
