// The smoke run of the Node matrix: under each pinned Node binary (scripts/node-matrix.js), a
// server process loads the package (require and import), enables an HTTP server and answers a
// Fastify app's inject; curl in a ToaCgroup (its own kernel writes a TOA into its SYN) asks it
// for realRemoteAddress(). The whole suite runs on 18 and 26 (.ci/run); this covers 20, 22, 24
// too, as separate processes whose `process.version` is asserted.
import * as path from 'node:path';
import { ToaCgroup, describeSockops } from '../helpers/sockops';
import { itNeeds } from '../helpers/jest/requirements';
import { startWithHello, stopWithStdin } from '../helpers/process/line-process';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const matrix = require('../../scripts/node-matrix.js') as {
  NODE_MATRIX: Record<string, string>;
  nodeBinary(major: string): string;
  missingNode(major: string): string | null;
};

const SERVER = path.join(__dirname, '..', 'helpers', 'children', 'version-smoke-server.js');
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
        const { child, hello } = await startWithHello<Hello>([matrix.nodeBinary(major), SERVER, fastify], START_TIMEOUT_MS);
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
          await stopWithStdin(child);
        }
      },
    );
  }
});
