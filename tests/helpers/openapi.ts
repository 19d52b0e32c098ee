// The operations of the functions' OpenAPI documents, as each function serves its own
// (`/<fn>/openapi.json`): the generated suites walk them, so a new route is covered
// without a test naming it.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { app as jobs } from '../../functions/jobs/app.ts';
import { app as tenants } from '../../functions/tenants/app.ts';
import { app as tickets } from '../../functions/tickets/app.ts';
import { app as voice } from '../../functions/voice/app.ts';
import { app as webhooks } from '../../functions/webhooks/app.ts';
import { root } from '../../scripts/stack.mjs';

type FetchApp = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };

/** Every function's app, by its folder under functions/: the suites that walk every
 *  document take them from here, so none of them leaves a function out (three walked
 *  four of the five, voice missing, until 2026-12-06). `functionFolders` is what
 *  openapi-names.test.ts holds the list to. */
export const functionApps: Record<string, FetchApp> = { jobs, tenants, tickets, voice, webhooks };

/** The functions there are: the folders under functions/. */
export function functionFolders(): string[] {
  return readdirSync(path.join(root, 'functions'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

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
