// The layout the architecture fixes: one folder per function, each in config.toml with
// verify_jwt = false (functions verify their own tokens) and an entrypoint that only
// calls Deno.serve; deno.json resolves the same package versions as package.json.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';
import { expect, it } from 'vitest';
import { root } from '../../scripts/stack.mjs';

const read = (p: string) => readFileSync(path.join(root, p), 'utf8');
const config = parse(read('supabase/config.toml')) as { functions: Record<string, Record<string, unknown>> };

it('declares every function folder in config.toml, with verify_jwt = false and its entrypoint', () => {
  const folders = readdirSync(path.join(root, 'functions'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  expect(Object.keys(config.functions).sort()).toEqual(folders);
  for (const [name, fn] of Object.entries(config.functions)) {
    expect(fn.verify_jwt, name).toBe(false);
    expect(path.resolve(root, 'supabase', String(fn.entrypoint))).toBe(path.join(root, 'functions', name, 'index.ts'));
    expect(path.resolve(root, 'supabase', String(fn.import_map))).toBe(path.join(root, 'supabase', 'functions', 'deno.json'));
  }
});

it('keeps each entrypoint to Deno.serve of an app module tests can import', () => {
  for (const name of Object.keys(config.functions)) {
    const index = read(`functions/${name}/index.ts`).trim().split('\n').filter((l) => l.trim());
    expect(index, name).toEqual([`import { app } from './app.ts';`, 'Deno.serve(app.fetch);']);
    expect(existsSync(path.join(root, 'functions', name, 'app.ts'))).toBe(true);
    expect(read(`functions/${name}/app.ts`)).toMatch(new RegExp(`createApp(<\\w+>)?\\('${name}'`));
  }
});

it('maps deno.json imports to the versions package.json installs, and no remote URLs', () => {
  const deno = JSON.parse(read('deno.json')) as { imports: Record<string, string>; nodeModulesDir: string };
  const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
  expect(deno.nodeModulesDir).toBe('manual');
  for (const [spec, target] of Object.entries(deno.imports)) {
    const name = spec.replace(/\/$/, '');
    expect(target, spec).toMatch(/^npm:\/?/);
    expect(target, spec).toContain(`${name}@${pkg.dependencies[name]}`);
  }
  const sources = ['functions', 'shared'].flatMap((dir) =>
    readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && f.name.endsWith('.ts'))
      .map((f) => readFileSync(path.join(f.parentPath, f.name), 'utf8')));
  for (const src of sources) expect(src).not.toMatch(/from ['"](https?:|jsr:)/);
});
