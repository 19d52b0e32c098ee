// What a client developer does with the OpenAPI documents: generate types with
// openapi-typescript and call the API through openapi-fetch. For each function the
// document is linted (structure, resolvable refs, security named and defined, path
// parameters declared, a success and an error response on every operation; any problem
// fails generation), its types generated into a temporary folder, and a small client
// using them type-checked by the project's tsc, strict: typed calls, every operation's
// 401 in the common error shape, and calls the API does not have refused.
// openapi-typescript needs the TypeScript 5 compiler API and comes from the workspace
// tools/openapi-gen, which has its own TypeScript 5 (the project compiles with 7).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { astToString, createConfig, openapiTS } from '@tenant-platform/openapi-gen';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { root } from '../../scripts/stack.mjs';
import { functionApps as apps } from '../helpers/openapi.ts';

type Document = { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** Per function, calls a client would make, with what they read from the answers. */
const CALLS: Record<string, string> = {
  tenants: `
    const me = await client.GET('/tenants/me');
    const email: string | undefined = me.data?.user.email;
    const members = await client.GET('/tenants/{tenantId}/members', { params: { path: { tenantId: id } } });
    const code: string | undefined = members.error?.error.code;
    return [email, code];`,
  tickets: `
    const ticket = await client.GET('/tickets/{id}', { params: { path: { id } } });
    const title: string | undefined = ticket.data && 'title' in ticket.data ? ticket.data.title : undefined;
    // @ts-expect-error the path parameter is required
    await client.GET('/tickets/{id}');
    // Fields with a default (priority, department, tags, metadata) may be left out.
    const filed = await client.POST('/tickets', { body: { title: 'Printer is on fire' } });
    // @ts-expect-error the title is required
    await client.POST('/tickets', { body: { priority: 'high' } });
    return [title, filed.data?.id];`,
  jobs: `
    const run = await client.POST('/jobs/run', { body: { batch: 5 }, headers: { 'x-cron-secret': 'from-the-environment' } });
    const claimed: number | undefined = run.data?.claimed;
    // @ts-expect-error batch is a number
    await client.POST('/jobs/run', { body: { batch: 'five' } });
    return [claimed];`,
  voice: `
    const route = await client.GET('/voice/route', { params: { query: { to: '+14155550100', from: 'anonymous' } } });
    const agent: string | undefined = route.data?.agent.name;
    const reason: string | undefined = route.error?.error.code;
    // @ts-expect-error the dialled number is required
    await client.GET('/voice/route', { params: { query: { from: '+14155550123' } } });
    const customer = await client.GET('/voice/customers/{id}', { params: { path: { id } } });
    const notes: string | null | undefined = customer.data?.notes;
    const imported = await client.POST('/voice/customers/import', { body: { csv: 'phone\\n+14155550123\\n' } });
    const inserted: number | undefined = imported.data?.inserted;
    // @ts-expect-error the import takes a body
    await client.POST('/voice/customers/import', {});
    return [agent, reason, notes, inserted];`,
  webhooks: `
    const event = await client.POST('/webhooks/chatwoot/{tenantId}', {
      params: { path: { tenantId: id }, query: { token: 't' } },
      body: { event: 'message_created', id: 1 },
    });
    const outcome: 'applied' | 'ignored' | 'duplicate' | undefined = event.data?.outcome;
    // @ts-expect-error an event names its type
    await client.POST('/webhooks/clerk', { body: { data: {} } });
    return [outcome];`,
};

/** A small client of one function, on the generated `paths` of its document. */
function clientSource(fn: string, doc: Document): string {
  const unauthorized: string[] = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const method of METHODS.filter((m) => item[m])) {
      unauthorized.push(
        `  '' as paths[${JSON.stringify(p)}]['${method}']['responses'][401]['content']['application/json']['error']['code'],`,
      );
    }
  }
  return `import createClient from 'openapi-fetch';
import type { paths } from './${fn}.ts';

const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:54321/functions/v1' });

export async function calls(id: string): Promise<unknown[]> {${CALLS[fn]}
}

export async function refused(): Promise<void> {
  // @ts-expect-error no such path
  await client.GET('/${fn}/no-such-path');
}

/** Every operation answers 401 in the common error shape. */
export const unauthorizedCodes: string[] = [
${unauthorized.join('\n')}
];
`;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'openapi-client-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('generates a client from every function’s document that compiles, strict', async () => {
  // Problems the minimal ruleset only warns about, as errors: generation fails on them.
  const redocly = await createConfig({
    extends: ['minimal'],
    rules: {
      struct: 'error',
      'no-unresolved-refs': 'error',
      'security-defined': 'error',
      'operation-operationId-unique': 'error',
      'operation-parameters-unique': 'error',
      'path-parameters-defined': 'error',
      'no-identical-paths': 'error',
      'operation-2xx-response': 'error',
      'operation-4xx-response': 'error',
    },
  });
  for (const [fn, app] of Object.entries(apps)) {
    const doc = (await (await app.request(`/${fn}/openapi.json`)).json()) as Document;
    const generated = astToString(await openapiTS(doc as never, { redocly, silent: true, defaultNonNullable: false }));
    expect(generated, fn).toContain('export interface paths');
    await writeFile(path.join(dir, `${fn}.ts`), generated);
    await writeFile(path.join(dir, `${fn}-client.ts`), clientSource(fn, doc));
  }
  await writeFile(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        allowImportingTsExtensions: true,
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        lib: ['ES2023', 'DOM'],
        types: [],
        // The folder is outside the project: the client library from its node_modules.
        paths: { 'openapi-fetch': [path.join(root, 'node_modules/openapi-fetch')] },
      },
      include: ['*.ts'],
    }),
  );
  const tsc = path.join(root, 'node_modules/.bin/tsc');
  const result = await promisify(execFile)(tsc, ['-p', dir], { encoding: 'utf8' }).then(
    () => '',
    (err: { stdout?: string; stderr?: string; message: string }) => `${err.stdout ?? ''}${err.stderr ?? ''}` || err.message,
  );
  expect(result, 'tsc on the generated clients').toBe('');
}, 120_000);
