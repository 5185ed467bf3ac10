// The smoke run of the Node matrix: under each pinned Node binary (scripts/node-matrix.js), a
// server process loads the package (require and import), enables an HTTP server and answers a
// Fastify app's inject; curl in a ToaCgroup (its own kernel writes a TOA into its SYN) asks it
// for realRemoteAddress(). The whole suite runs on 18 and 26 (.ci/run); this covers 20, 22, 24
// too, as separate processes whose `process.version` is asserted.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ToaCgroup, describeSockops } from './helpers/sockops';
import { itNeeds } from './helpers/requirements';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const matrix = require('../scripts/node-matrix.js') as {
  NODE_MATRIX: Record<string, string>;
  nodeBinary(major: string): string;
  missingNode(major: string): string | null;
};

const SERVER = path.join(__dirname, 'helpers', 'version-smoke-server.js');
const START_TIMEOUT_MS = 20_000;
const CURL_TIMEOUT_MS = 10_000;

interface Hello {
  version: string;
  napi: string;
  support: { addon: boolean; savedSyn: boolean; error?: string };
  esmSame: boolean;
  port: number;
  inject: { status: number; body: unknown };
}

/** Starts the server under `node`; resolves to the process and its first line. */
function startServer(node: string, fastify: string): Promise<{ child: ChildProcess; hello: Hello }> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, [SERVER, fastify], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${node}: no first line within ${START_TIMEOUT_MS} ms: ${stderr}`));
    }, START_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${node} exited (${code ?? signal}) before its first line: ${stderr}`));
    });
    readline.createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ child, hello: JSON.parse(line) as Hello });
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`${node} said ${line} ${stderr}`));
      }
    });
  });
}

function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin!.end();
  });
}

describeSockops('the package under each Node of the matrix', () => {
  jest.setTimeout(60_000);
  let group: ToaCgroup;
  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['syn'] });
  });

  for (const [major, version] of Object.entries(matrix.NODE_MATRIX)) {
    // Fastify 5 does not run on Node 18 (its inject require()s an ES module); Fastify 4 does.
    const fastify = major === '18' ? 'fastify4' : 'fastify';
    itNeeds(
      matrix.missingNode(major),
      `Node ${version}: loads (require and import), TOA from curl's real SYN, ${fastify} inject`,
      async () => {
        const { child, hello } = await startServer(matrix.nodeBinary(major), fastify);
        try {
          expect(hello.version).toBe(`v${version}`);
          // The addon is N-API 8: every supported Node has at least that.
          expect(Number(hello.napi)).toBeGreaterThanOrEqual(8);
          expect(hello.support).toEqual({ addon: true, savedSyn: true });
          expect(hello.esmSame).toBe(true);
          // inject has no kernel socket: the answer is the fake peer's, never a TOA.
          expect(hello.inject).toEqual({ status: 200, body: { address: '127.0.0.1', port: 0, family: 'IPv4', source: 'peer' } });

          const r = await group.run('curl', ['-sS', '--max-time', '5', '-w', '\n%{local_port}', `http://127.0.0.1:${hello.port}/`], {
            timeoutMs: CURL_TIMEOUT_MS,
          });
          if (r.code !== 0) throw new Error(`curl in the cgroup failed (${r.code ?? r.signal}): ${r.stderr}`);
          const [body, localPort] = r.stdout.trim().split('\n');
          expect(JSON.parse(body)).toEqual({
            ...group.expected(Number(localPort)),
            family: 'IPv4',
            source: 'toa',
            kind: 254,
            packet: 'syn',
            proxy: { address: '127.0.0.1', port: Number(localPort), family: 'IPv4' },
          });
        } finally {
          await stopServer(child);
        }
      },
    );
  }
});
