// What the command-line scripts (`npm start`, `npm run token`, `npm run user`) share:
// argument errors that print usage instead of a stack trace, the data folder, and the
// lock by which a running stack claims its data folder.
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { root } from './stack.mjs';

export const defaultDataDir = path.join(root, '.local');

/** The data folder named by --data-dir, else PLATFORM_DATA_DIR, else .local. */
export const dataDirOption = () => ({ type: 'string', default: process.env.PLATFORM_DATA_DIR ?? defaultDataDir });

/** A word as the shell reads it back. */
export function shellQuote(word) {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** ` --data-dir <dir>` when the folder is not the default one: what a command needs to
 *  reach the stack that runs there. */
export function dataDirFlag(dataDir) {
  return path.resolve(dataDir) === defaultDataDir ? '' : ` --data-dir ${shellQuote(path.resolve(dataDir))}`;
}

/** Prints a usage error (exit 2) or the usage itself (--help, exit 0) and ends. */
export function usageExit(usage, problem) {
  if (problem) {
    console.error(`${problem}\n\n${usage}`);
    process.exit(2);
  }
  console.log(usage);
  process.exit(0);
}

/** parseArgs, with a usage error instead of an exception for unknown or malformed flags. */
export function parseCommandLine(usage, config) {
  let parsed;
  try {
    parsed = parseArgs({ ...config, strict: true, options: { ...config.options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    usageExit(usage, String(err?.message ?? err).split('\n')[0]);
  }
  if (parsed.values.help) usageExit(usage);
  return parsed;
}

/** A TCP port from the command line or the environment, or a usage error. */
export function portValue(usage, name, raw) {
  const port = /^\d{1,5}$/.test(String(raw).trim()) ? Number(raw) : NaN;
  if (!(port >= 1 && port <= 65535)) usageExit(usage, `${name} must be a port number (1-65535), not ${JSON.stringify(String(raw))}`);
  return port;
}

/** A number of seconds from the environment (a timer's period): 0.1 to 3,600. */
export function secondsValue(usage, name, raw) {
  const seconds = /^\d+(\.\d+)?$/.test(String(raw).trim()) ? Number(raw) : NaN;
  if (!(seconds >= 0.1 && seconds <= 3600)) usageExit(usage, `${name} must be a number of seconds (0.1-3600), not ${JSON.stringify(String(raw))}`);
  return seconds;
}

const lockFile = (dataDir) => path.join(dataDir, 'stack.lock');

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** The stack running with this data folder ({ pid, port, dbPort, dataDir }), if any. */
export function runningLock(dataDir) {
  try {
    const lock = JSON.parse(readFileSync(lockFile(dataDir), 'utf8'));
    return Number.isInteger(lock.pid) && lock.pid !== process.pid && alive(lock.pid) ? lock : undefined;
  } catch {
    return undefined;
  }
}

/** Claims the data folder for this process until it exits. Fails (with who holds it) if
 *  a running stack has it; a lock left by a stack that died is taken over. */
export function claimDataDir(info) {
  const file = lockFile(info.dataDir);
  const body = JSON.stringify({ pid: process.pid, ...info }, null, 2);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, body, { flag: 'wx', mode: 0o600 });
      process.on('exit', () => {
        try {
          if (JSON.parse(readFileSync(file, 'utf8')).pid === process.pid) unlinkSync(file);
        } catch { /* already gone */ }
      });
      return undefined;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = runningLock(info.dataDir);
      if (holder) return holder;
      try {
        unlinkSync(file);
      } catch { /* another start took it over first */ }
    }
  }
  return runningLock(info.dataDir) ?? { pid: undefined, dataDir: info.dataDir };
}

/** True when something accepts connections on 127.0.0.1:port. */
export function portInUse(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** What /health of a local stack on this port says (its data folder), if one answers. */
export async function stackOnPort(port) {
  // A timer that keeps the process alive (AbortSignal.timeout's does not): a server
  // that accepts and never answers must not leave this await unsettled.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 2_000);
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: controller.signal });
    const body = await res.json();
    return Array.isArray(body?.functions) ? body : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The connection details of the stack running with this data folder, or an error that
 *  says it is not running there and how to name the folder it runs with. */
export async function runningStack(dataDir, command) {
  const dir = path.resolve(dataDir);
  const notRunning = (why) =>
    new Error(
      `No local stack is running with data dir ${dir} (${why}).\n` +
        `Start it with \`npm start${dataDirFlag(dir) ? ` --${dataDirFlag(dir)}` : ''}\`; or, if it runs with another data ` +
        `folder, name that folder: \`${command} --data-dir <folder>\` or PLATFORM_DATA_DIR=<folder> ` +
        `(the start banner prints the exact command).`,
    );
  if (!existsSync(dir)) throw notRunning('the folder does not exist');
  const lock = runningLock(dir);
  if (!lock) throw notRunning(existsSync(path.join(dir, 'stack.json')) ? 'it was started there before, but is stopped' : 'it was never started there');
  try {
    return JSON.parse(await readFile(path.join(dir, 'stack.json'), 'utf8'));
  } catch {
    throw notRunning('it is still starting; try again in a few seconds');
  }
}
