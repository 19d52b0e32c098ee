// The files `supabase functions deploy` uploads for one function, found the way the pinned
// CLI (3.1, API upload: `--use-api`, or no Docker) finds them: the function's import map
// from config.toml (a deno.json whose only key is "importMap" is followed to that file),
// its static_files, then every module reachable from the entrypoint through relative or
// absolute imports (bare specifiers are mapped through the import map first; URLs such as
// npm: are left to the platform). Paths are relative to the project root, as uploaded.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'smol-toml';

/** The CLI's import scanner, verbatim (a regular expression over the source text). */
const IMPORT_PATTERN = /(?:import|export)\s+(?:type\s+)?(?:{[^{}]+}|.*?)\s*(?:from)?\s*['"](.*?)['"]|import\(\s*(?:"([^"\r\n]*)"|'([^'\r\n]*)')\s*[,)]/gi;

type FunctionConfig = { entrypoint?: string; import_map?: string; static_files?: string[]; enabled?: boolean };

export interface UploadSet {
  slug: string;
  /** Relative to the project root, as the CLI names them in the upload. */
  entrypoint: string;
  importMap: string;
  files: string[];
}

const isUrl = (s: string) => {
  if (s.startsWith('/')) return false;
  try {
    return new URL(s).protocol.length > 0;
  } catch {
    return false;
  }
};

/** Longest matching key of the import map; a key ending in '/' maps a prefix. */
function mapSpecifier(imports: Record<string, string>, spec: string): { target: string; substituted: boolean } {
  let best: [string, string] | undefined;
  for (const [key, value] of Object.entries(imports)) {
    if (!key) continue;
    if (key.endsWith('/') ? !value.endsWith('/') || !spec.startsWith(key) : spec !== key) continue;
    if (!best || key.length > best[0].length) best = [key, value];
  }
  return best ? { target: best[1] + spec.slice(best[0].length), substituted: true } : { target: spec, substituted: false };
}

export function functionSlugs(root: string): string[] {
  const config = parse(readFileSync(path.join(root, 'supabase', 'config.toml'), 'utf8')) as { functions?: Record<string, FunctionConfig> };
  return Object.entries(config.functions ?? {}).filter(([, f]) => f.enabled !== false).map(([slug]) => slug).sort();
}

export function uploadSet(root: string, slug: string): UploadSet {
  const supabaseDir = path.join(root, 'supabase');
  const config = parse(readFileSync(path.join(supabaseDir, 'config.toml'), 'utf8')) as { functions: Record<string, FunctionConfig> };
  const fn = config.functions[slug];
  if (!fn) throw new Error(`no [functions.${slug}] in supabase/config.toml`);
  const entry = path.resolve(supabaseDir, fn.entrypoint || path.join('functions', slug, 'index.ts'));
  let importMap = fn.import_map ? path.resolve(supabaseDir, fn.import_map) : '';
  if (!importMap) {
    // Without import_map the CLI takes a deno.json(c) beside the entrypoint.
    for (const name of ['deno.json', 'deno.jsonc']) {
      const candidate = path.join(path.dirname(entry), name);
      if (statSync(candidate, { throwIfNoEntry: false })?.isFile()) {
        importMap = candidate;
        break;
      }
    }
  }
  const files = new Set<string>();
  const inRoot = (abs: string) => {
    const rel = path.relative(root, abs);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  };
  const add = (abs: string) => {
    if (!inRoot(abs)) throw new Error(`the CLI refuses to upload a file outside the project: ${abs}`);
    files.add(path.relative(root, abs).split(path.sep).join('/'));
  };

  let imports: Record<string, string> = {};
  if (importMap) {
    add(importMap);
    let parsed = JSON.parse(readFileSync(importMap, 'utf8')) as { imports?: Record<string, string>; scopes?: unknown; importMap?: string };
    if (/^deno\.jsonc?$/i.test(path.basename(importMap)) && !parsed.imports && !parsed.scopes && parsed.importMap) {
      const referenced = path.resolve(path.dirname(importMap), parsed.importMap);
      add(referenced);
      parsed = JSON.parse(readFileSync(referenced, 'utf8'));
      importMap = referenced;
    }
    if (parsed.scopes) throw new Error('import map scopes are not modelled by this helper');
    // Targets are resolved against the map's folder, URLs (npm:, jsr:, https:) stay.
    imports = Object.fromEntries(
      Object.entries(parsed.imports ?? {}).map(([k, v]) => [k, isUrl(v) || v.startsWith('/') ? v : path.resolve(path.dirname(importMap), v) + (v.endsWith('/') ? '/' : '')]),
    );
  }
  for (const pattern of fn.static_files ?? []) {
    if (/[*?[]/.test(pattern)) throw new Error(`static_files glob ${pattern}: not modelled by this helper`);
    add(path.resolve(supabaseDir, pattern));
  }

  // The module walk from the entrypoint.
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const current = queue.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    if (!inRoot(current)) continue; // the CLI warns and skips
    const stat = statSync(current, { throwIfNoEntry: false });
    if (!stat?.isFile()) throw new Error(`${path.relative(root, current)} is imported but missing: the deploy would fail`);
    add(current);
    const source = readFileSync(current, 'utf8');
    for (const m of source.matchAll(IMPORT_PATTERN)) {
      const raw = (m[1] ?? m[2] ?? m[3])?.trim();
      if (raw === undefined) continue;
      const { target, substituted } = mapSpecifier(imports, raw);
      const last = target.slice(target.lastIndexOf('/') + 1);
      if (!last.includes('.')) continue;
      if (!target.startsWith('./') && !target.startsWith('../') && !target.startsWith('/')) continue;
      queue.push(!substituted && !target.startsWith('/') ? path.resolve(path.dirname(current), target) : path.resolve(target));
    }
  }
  // Local targets of the import map are uploaded too (URLs are fetched by the platform).
  for (const target of Object.values(imports)) {
    if (isUrl(target)) continue;
    throw new Error(`import map target ${target} is a local path: not modelled by this helper`);
  }
  return {
    slug,
    entrypoint: path.relative(root, entry).split(path.sep).join('/'),
    importMap: importMap ? path.relative(root, importMap).split(path.sep).join('/') : '',
    files: [...files].sort(),
  };
}
