// Calls a function's Hono app in-process, as the deployed function would be called.
type FetchApp = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };

export interface CallResult {
  status: number;
  body: any;
}

export async function call(
  app: FetchApp,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string | Uint8Array; headers?: Record<string, string> } = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | Uint8Array | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await app.request(path, { method, headers, body: body as BodyInit | undefined });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Asserts the common error shape and returns its code. */
export function errorCode(result: CallResult): string {
  const e = result.body?.error;
  if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') {
    throw new Error(`not the common error shape: ${JSON.stringify(result.body)}`);
  }
  return e.code;
}
