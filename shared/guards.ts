// A last line of defence for the function process: an error that escapes every
// handler (a library callback throwing from a timer, a promise nobody awaited) is
// logged and the process keeps serving, instead of Deno ending it. It is no substitute
// for handling the error where it happens (shared/db.ts does for lost connections);
// it only keeps one stray bug from taking every in-flight request down with it.
// Installed once per process, under Deno only (the Node test runner reports these
// itself).

let installed = false;

/** The name, code and first line of the message only: never values, queries or URLs. */
function describe(reason: unknown): string {
  if (reason instanceof Error) {
    const code = (reason as { code?: unknown }).code;
    const first = reason.message.split('\n')[0].replace(/\w+:\/\/[^\s]*/g, '<url>').slice(0, 200);
    return `${reason.name}${typeof code === 'string' ? ` ${code}` : ''}: ${first}`;
  }
  return typeof reason;
}

export function installProcessGuards(): void {
  if (installed || typeof (globalThis as { Deno?: unknown }).Deno === 'undefined') return;
  installed = true;
  globalThis.addEventListener('unhandledrejection', (e: PromiseRejectionEvent) => {
    e.preventDefault();
    console.error('[process] unhandled rejection kept from ending the process:', describe(e.reason));
  });
  globalThis.addEventListener('error', (e: ErrorEvent) => {
    e.preventDefault();
    console.error('[process] uncaught error kept from ending the process:', describe(e.error));
  });
}
