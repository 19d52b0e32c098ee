// What `supabase functions deploy` uploads must build on the platform on its own: no
// node_modules, no package.json, only the import map config.toml names. Each function's
// upload set (tests/helpers/upload-set.ts, the pinned CLI's rules) is copied into an
// empty temp folder and type-checked there by the Deno from node_modules, with its own
// DENO_DIR, resolving every npm: import from the registry as the platform does.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root } from '../../scripts/stack.mjs';
import { functionSlugs, uploadSet } from '../helpers/upload-set.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'deploy-bundle-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CHECK_TIMEOUT_MS = 240_000;

/** `deno check` of the copied upload set; resolves with the exit code and output. */
function denoCheck(dir: string, config: string, entrypoint: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string> = {};
    for (const k of ['PATH', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'https_proxy', 'http_proxy', 'no_proxy', 'NPM_CONFIG_REGISTRY']) {
      if (process.env[k] !== undefined) env[k] = process.env[k]!;
    }
    // A machine behind a TLS-inspecting proxy trusts an extra CA: Deno reads the system store too.
    if (process.env.NODE_EXTRA_CA_CERTS) env.DENO_CERT = process.env.NODE_EXTRA_CA_CERTS;
    const child = spawn(path.join(root, 'node_modules', '.bin', 'deno'), ['check', '--config', config, entrypoint], {
      cwd: dir,
      env: { ...env, HOME: tmp, DENO_DIR: path.join(tmp, 'deno-dir'), NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', DENO_TLS_CA_STORE: 'mozilla,system' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: CHECK_TIMEOUT_MS,
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: signal ? null : code, output: signal ? `killed (${signal})\n${output}` : output }));
  });
}

function assemble(slug: string, files: string[], replace: Record<string, string> = {}) {
  const dir = path.join(tmp, slug);
  for (const f of files) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    copyFileSync(path.join(root, replace[f] ?? f), path.join(dir, f));
  }
  return dir;
}

const slugs = functionSlugs(root);

describe('the deployed bundle', () => {
  it('covers the five functions of config.toml, each with the deploy config (npm: from the registry, no node_modules)', () => {
    expect(slugs).toEqual(['jobs', 'tenants', 'tickets', 'voice', 'webhooks']);
    const deploy = JSON.parse(readFileSync(path.join(root, 'supabase/functions/deno.json'), 'utf8'));
    const local = JSON.parse(readFileSync(path.join(root, 'deno.json'), 'utf8'));
    expect(deploy.nodeModulesDir).toBe('none');
    expect(local.nodeModulesDir).toBe('manual');
    // The two configs resolve the same packages with the same compiler options.
    expect(deploy.imports).toEqual(local.imports);
    expect(deploy.compilerOptions).toEqual(local.compilerOptions);
    for (const slug of slugs) {
      const set = uploadSet(root, slug);
      expect(set.importMap, slug).toBe('supabase/functions/deno.json');
      expect(set.files, slug).toContain(`functions/${slug}/index.ts`);
      expect(set.files, slug).toContain(`functions/${slug}/app.ts`);
      expect(set.files, slug).toContain('shared/http.ts');
      expect(set.files.filter((f) => f.includes('node_modules') || f.endsWith('package.json')), slug).toEqual([]);
      // Only that function's folder (and shared code) goes up with it.
      expect(set.files.filter((f) => f.startsWith('functions/') && !f.startsWith(`functions/${slug}/`)), slug).toEqual([]);
    }
  });

  it.each(slugs)('%s: its upload set type-checks alone in an empty folder', async (slug) => {
    const set = uploadSet(root, slug);
    const dir = assemble(slug, set.files);
    const { code, output } = await denoCheck(dir, set.importMap, set.entrypoint);
    expect(output).not.toMatch(/error/i);
    expect(code, output).toBe(0);
  }, CHECK_TIMEOUT_MS + 10_000);

  it('fails there with the local deno.json (nodeModulesDir "manual"), as the issue saw', async () => {
    const set = uploadSet(root, 'tenants');
    const dir = assemble('tenants-with-local-config', set.files, { [set.importMap]: 'deno.json' });
    const { code, output } = await denoCheck(dir, set.importMap, set.entrypoint);
    expect(code).not.toBe(0);
    expect(output).toMatch(/Could not find a matching package for 'npm:[^']+' in the node_modules directory/);
  }, CHECK_TIMEOUT_MS + 10_000);
});
