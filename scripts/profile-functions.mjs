// Where a functions request spends its JavaScript time: a CPU profile of the running
// functions server, taken through its V8 inspector while autocannon loads one route.
//
//   FUNCTIONS_DENO_FLAGS=--inspect=127.0.0.1:9229 npm start        (one terminal)
//   node scripts/profile-functions.mjs --url http://127.0.0.1:54321/functions/v1/tenants/me \
//     --token <a token npm start printed>                            (another)
//
// Prints the functions with the most self time, and the share of time under each
// source file (node_modules folded to their package), then writes the .cpuprofile
// (Chrome DevTools → Performance → Load profile) where --out says.
import autocannon from 'autocannon';
import { writeFile } from 'node:fs/promises';
import WebSocket from 'ws';
import { parseCommandLine, usageExit } from './cli.mjs';

const usage = `usage: node scripts/profile-functions.mjs --url <url> [options]

options:
  --url <url>          the route to load (GET unless --body is given)
  --token <jwt>        sent as Authorization: Bearer
  --body <json>        POST this JSON body
  --inspector <host:port>   the server's inspector (default 127.0.0.1:9229)
  --seconds <n>        how long to load it (default 10)
  --connections <n>    concurrent connections (default 16)
  --out <file>         where to write the .cpuprofile (default: not written)
  --callers <name>     also print who calls the function of that name (10 frames up)
  -h, --help           show this help`;

const { values: args } = parseCommandLine(usage, {
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    body: { type: 'string' },
    inspector: { type: 'string', default: '127.0.0.1:9229' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    out: { type: 'string' },
    callers: { type: 'string' },
  },
});
if (!args.url) usageExit(usage, '--url is required');

const targets = await (await fetch(`http://${args.inspector}/json/list`)).json();
const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  ws.once('open', resolve);
  ws.once('error', reject);
});
let nextId = 1;
const pending = new Map();
ws.on('message', (data) => {
  const msg = JSON.parse(String(data));
  if (msg.id && pending.has(msg.id)) {
    pending.get(msg.id)(msg);
    pending.delete(msg.id);
  }
});
const send = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, (msg) => (msg.error ? reject(new Error(msg.error.message)) : resolve(msg.result)));
    ws.send(JSON.stringify({ id, method, params }));
  });

await send('Profiler.enable');
await send('Profiler.setSamplingInterval', { interval: 100 });
await send('Profiler.start');
const result = await autocannon({
  url: args.url,
  method: args.body ? 'POST' : 'GET',
  body: args.body,
  connections: Number(args.connections),
  duration: Number(args.seconds),
  headers: {
    ...(args.token ? { authorization: `Bearer ${args.token}` } : {}),
    ...(args.body ? { 'content-type': 'application/json' } : {}),
  },
});
const { profile } = await send('Profiler.stop');
ws.close();

console.log(`${result.requests.total} requests, ${result.requests.average} req/s, p50 ${result.latency.p50} ms, p99 ${
  result.latency.p99} ms, non-2xx ${result.non2xx}`);

// Self time per node from the samples.
const interval = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  interval.set(profile.samples[i], (interval.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...interval.values()].reduce((a, b) => a + b, 0);
const byFunction = new Map();
const byFile = new Map();
const fileOf = (url) => {
  if (!url) return '(native/idle)';
  const pkg = url.match(/node_modules\/(?:\.deno\/)?((?:@[^/]+\/)?[^/@]+)/);
  if (pkg) return `npm:${pkg[1]}`;
  return url.replace(/^file:\/\/.*?\/(functions|shared|scripts)\//, '$1/').replace(/^ext:/, 'ext:');
};
for (const node of profile.nodes) {
  const self = interval.get(node.id) ?? 0;
  if (!self) continue;
  const f = node.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${fileOf(f.url)}:${f.lineNumber + 1}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + self);
  byFile.set(fileOf(f.url), (byFile.get(fileOf(f.url)) ?? 0) + self);
}
const pct = (v) => `${((100 * v) / total).toFixed(1).padStart(5)} %`;
console.log('\nself time by function (top 30):');
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${pct(v)}  ${k}`);
console.log('\nself time by file (top 25):');
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${pct(v)}  ${k}`);
if (args.callers) {
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const stacks = new Map();
  for (const node of profile.nodes) {
    if (node.callFrame.functionName !== args.callers) continue;
    const frames = [];
    for (let p = parent.get(node.id); p && frames.length < 10; p = parent.get(p.id)) {
      frames.push(`${p.callFrame.functionName || '(anonymous)'} ${fileOf(p.callFrame.url)}:${p.callFrame.lineNumber + 1}`);
    }
    const key = frames.join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + (interval.get(node.id) ?? 0));
    void byId;
  }
  console.log(`\ncallers of ${args.callers}:`);
  for (const [k, v] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${pct(v)}  ${k}`);
}
if (args.out) {
  await writeFile(args.out, JSON.stringify(profile));
  console.log(`\nprofile written to ${args.out}`);
}
