// A real HTTP client on loopback: `count` requests over one keep-alive connection, with the
// client's own address and port to compare answers with.
import * as http from 'node:http';
import type * as net from 'node:net';

export interface LoopbackResult {
  localAddress: string;
  localPort: number;
  /** Distinct client ports seen: 1 means every request went over the same connection. */
  connections: number;
  responses: { status: number; body: string }[];
}

export async function getOnLoopback(
  port: number,
  { host = '127.0.0.1', path = '/', count = 1, headers = {} }: { host?: string; path?: string; count?: number; headers?: Record<string, string> } = {},
): Promise<LoopbackResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const responses: { status: number; body: string }[] = [];
  const ports = new Set<number>();
  let local: net.AddressInfo | undefined;
  try {
    for (let i = 0; i < count; i++) {
      responses.push(
        await new Promise((resolve, reject) => {
          const req = http.get({ host, port, path, agent, headers, timeout: 5000 }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('socket', (s: net.Socket) => {
            const note = () => {
              local = { address: s.localAddress!, port: s.localPort!, family: '' };
              ports.add(s.localPort!);
            };
            if (s.localPort !== undefined) note();
            else s.once('connect', note);
          });
          req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
          req.on('error', reject);
        }),
      );
    }
  } finally {
    agent.destroy();
  }
  return { localAddress: local!.address, localPort: local!.port, connections: ports.size, responses };
}

/**
 * Collects the warnings emitted while `fn` runs, as { code, message }. Watches
 * process.emitWarning itself: jest's sandboxed `process` does not see the 'warning' event.
 */
export async function collectWarnings<T>(fn: () => Promise<T>): Promise<{ result: T; warnings: { code?: string; message: string }[] }> {
  const warnings: { code?: string; message: string }[] = [];
  const original = process.emitWarning;
  process.emitWarning = function collect(this: unknown, warning: string | Error, ...rest: unknown[]) {
    const options = rest[0];
    const code = typeof options === 'object' && options !== null ? (options as { code?: string }).code : (rest[1] as string | undefined);
    warnings.push({ code, message: typeof warning === 'string' ? warning : warning.message });
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    const result = await fn();
    return { result, warnings };
  } finally {
    process.emitWarning = original;
  }
}
