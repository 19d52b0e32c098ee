// The local functions server (Deno): every function of supabase/config.toml at
// http://127.0.0.1:<PORT>/functions/v1/<name>, stripping /functions/v1 as the hosted
// gateway does, plus the JWKS of the local development issuers. Local only.
import { parse } from 'smol-toml';
import { handleLocalStorage } from '../shared/storage.ts';

type FetchApp = { fetch: (req: Request) => Response | Promise<Response> };

const root = new URL('../', import.meta.url);
const config = parse(await Deno.readTextFile(new URL('supabase/config.toml', root))) as {
  functions?: Record<string, { enabled?: boolean }>;
};
const apps = new Map<string, FetchApp>();
for (const [name, fn] of Object.entries(config.functions ?? {})) {
  if (fn.enabled === false) continue;
  const mod = await import(new URL(`functions/${name}/app.ts`, root).href) as { app: FetchApp };
  apps.set(name, mod.app);
}

// Public keys of the local Clerk and SuperTokens stand-in issuers (private halves stay
// in .local/ for `npm run token`).
const devJwks = JSON.parse(Deno.env.get('DEV_ISSUER_JWKS') ?? '{}') as Record<string, unknown>;

const port = Number(Deno.env.get('PORT') ?? 54321);
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

Deno.serve(
  { hostname: '127.0.0.1', port, onListen: () => console.log(`functions listening on ${port}`) },
  (req) => {
    const url = new URL(req.url);
    const fn = url.pathname.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
    if (fn) {
      const app = apps.get(fn[1]);
      if (!app) return json({ error: { code: 'not_found', message: `No function named ${fn[1]}` } }, 404);
      url.pathname = url.pathname.slice('/functions/v1'.length);
      return app.fetch(new Request(url, req));
    }
    const issuer = url.pathname.match(
      /^\/dev-issuers\/(clerk|supertokens)\/(?:\.well-known\/jwks\.json|jwt\/jwks\.json)$/,
    );
    if (issuer && devJwks[issuer[1]]) return json(devJwks[issuer[1]]);
    if (url.pathname.startsWith('/storage/v1/local/')) return handleLocalStorage(req);
    if (url.pathname === '/health') return json({ ok: true, functions: [...apps.keys()] });
    return json({ error: { code: 'not_found', message: 'Not found' } }, 404);
  },
);
