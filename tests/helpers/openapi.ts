// The operations of the functions' OpenAPI documents, as each function serves its own
// (`/<fn>/openapi.json`): the generated suites walk them, so a new route is covered
// without a test naming it.
type FetchApp = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };

export type Parameter = { name: string; in: string; required?: boolean; schema?: { type?: string | string[] } };
export type Operation = {
  operationId?: string;
  tags?: string[];
  parameters?: Parameter[];
  security?: Record<string, unknown>[];
  requestBody?: unknown;
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
};
export type Documented = { fn: string; app: FetchApp; path: string; method: string; op: Operation };

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** Every operation of each app's document, in the document's order. */
export async function operationsOf(apps: Record<string, FetchApp>): Promise<Documented[]> {
  const found: Documented[] = [];
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
      for (const method of METHODS.filter((m) => item[m])) found.push({ fn, app, path, method, op: item[method] });
    }
  }
  return found;
}
