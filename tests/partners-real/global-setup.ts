// test:n8n: the real n8n (installed on demand, scripts/n8n-real.mjs) for the whole run,
// next to the usual Postgres (tests/setup/global-setup.ts); stopped with its process
// group at the end.
import type { TestProject } from 'vitest/node';
import { installN8n, startN8n } from '../../scripts/n8n-real.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    n8nUrl: string;
    n8nApiKey: string;
  }
}

export default async function setup(project: TestProject) {
  installN8n();
  const started = Date.now();
  const n8n = await startN8n({ log: console.log });
  console.log(`n8n ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  project.provide('n8nUrl', n8n.url);
  project.provide('n8nApiKey', n8n.apiKey);
  return () => n8n.stop();
}
