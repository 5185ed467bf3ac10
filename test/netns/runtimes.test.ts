// Bun and Deno (the npm packages `bun` and `deno`, pinned in devDependencies): the package loads
// by require and import and answers without throwing; what each runtime gives it (the addon, a
// file descriptor on its sockets, the saved SYN, diagnostics_channel) is asserted exactly, with
// Node as the reference. curl in a ToaCgroup (a TOA in its own SYN) asks runtime-probe.cjs's
// net.Server and http.Server for realRemoteAddress(). docs/runtimes.md says
// the same in prose.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ToaCgroup, describeSockops } from '../helpers/sockops';
import { itNeeds } from '../helpers/jest/requirements';
import { startWithHello, stopWithStdin } from '../helpers/process/line-process';

const ROOT = path.join(__dirname, '..', '..');
const PROBE = path.join(__dirname, '..', 'helpers', 'children', 'runtime-probe.cjs');
const START_TIMEOUT_MS = 20_000;
const CURL_TIMEOUT_MS = 10_000;
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };

interface Hello {
  runtime: { name: string; version: string };
  cjs: string;
  esmSame: unknown;
  support: unknown;
  channels: { warning: string[]; processWarning: string[] };
  entries: Record<string, unknown>;
  inject: unknown;
  listeningFd: { net: number | string; http: number | string };
  ports: { net: number; http: number };
}

interface Reply {
  answer: Record<string, unknown>;
  fd: number | string;
  listeningFd: number | string;
  resolveMessages: number;
}

interface Runtime {
  name: 'node' | 'bun' | 'deno';
  command: string[];
  /** which of the probe's servers have a kernel fd the addon can read the saved SYN from */
  savedSyn: { net: boolean; http: boolean };
  /** node-toa warnings enable() gives (on the channel and as process warnings) */
  warnings: string[];
}

const bin = (name: string) => path.join(ROOT, 'node_modules', '.bin', name);

const RUNTIMES: Runtime[] = [
  { name: 'node', command: [process.execPath], savedSyn: { net: true, http: true }, warnings: [] },
  // Bun's net.Server is a kernel socket with its fd on _handle; its http.Server is Bun.serve underneath, without one.
  { name: 'bun', command: [bin('bun')], savedSyn: { net: true, http: false }, warnings: ['NODE_TOA_NO_FD_RUNTIME'] },
  // Deno's node:net and node:http sockets expose no fd at all.
  { name: 'deno', command: [bin('deno'), 'run', '-A'], savedSyn: { net: false, http: false }, warnings: ['NODE_TOA_NO_FD_RUNTIME'] },
];

function missingRuntime(r: Runtime): string | null {
  if (r.name === 'node') return null;
  return fs.existsSync(r.command[0]) ? null : `${r.command[0]} is missing (devDependency ${r.name}@${pkg.devDependencies[r.name]}: npm install)`;
}

describeSockops('the package under Bun and Deno (Node as the reference)', () => {
  jest.setTimeout(60_000);
  let group: ToaCgroup;
  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['syn'] });
  });

  async function ask(port: number): Promise<{ reply: Reply; localPort: number }> {
    const r = await group.run('curl', ['-sS', '--max-time', '5', '-w', '\n%{local_port}', `http://127.0.0.1:${port}/`], { timeoutMs: CURL_TIMEOUT_MS });
    if (r.code !== 0) throw new Error(`curl in the cgroup failed (${r.code ?? r.signal}): ${r.stderr}`);
    const [body, localPort] = r.stdout.trim().split('\n');
    return { reply: JSON.parse(body) as Reply, localPort: Number(localPort) };
  }

  for (const rt of RUNTIMES) {
    const version = rt.name === 'node' ? process.versions.node : pkg.devDependencies[rt.name];
    itNeeds(missingRuntime(rt), `${rt.name} ${version}: loads, answers, reads the saved SYN where its sockets have an fd`, async () => {
      const { child, hello } = await startWithHello<Hello>([...rt.command, PROBE], START_TIMEOUT_MS, { ...process.env, NO_COLOR: '1' });
      try {
        expect(hello.runtime).toEqual({ name: rt.name, version });
        expect(hello.cjs).toBe('function');
        // import() and require() give the very same module instance.
        expect(hello.esmSame).toBe(true);
        // The addon loads everywhere (N-API); whether a socket has an fd for it is the runtime's.
        expect(hello.support).toEqual({ addon: true, savedSyn: true });
        expect(hello.entries).toEqual({ express: 'function', fastify: 'function', esmFastify: 'function' });
        expect(hello.inject).toEqual({ status: 200, body: { address: '127.0.0.1', port: 0, family: 'IPv4', source: 'peer' } });
        // diagnostics_channel carries node-toa:warning on every runtime.
        expect(hello.channels).toEqual({ warning: rt.warnings, processWarning: rt.warnings });
        for (const kind of ['net', 'http'] as const) {
          expect([kind, typeof hello.listeningFd[kind]]).toEqual([kind, rt.savedSyn[kind] ? 'number' : 'string']);
        }

        for (const kind of ['net', 'http'] as const) {
          const { reply, localPort } = await ask(hello.ports[kind]);
          const peer = { address: '127.0.0.1', port: localPort, family: 'IPv4' };
          const want = rt.savedSyn[kind]
            ? { ...group.expected(localPort), family: 'IPv4', source: 'toa', kind: 254, packet: 'syn', proxy: peer }
            : { ...peer, source: 'peer' };
          expect([kind, reply.answer]).toEqual([kind, want]);
          expect([kind, typeof reply.fd]).toEqual([kind, rt.savedSyn[kind] ? 'number' : 'string']);
          // node-toa:resolve reaches subscribers wherever a socket was resolved from its fd.
          if (rt.savedSyn[kind]) expect([kind, reply.resolveMessages > 0]).toEqual([kind, true]);
        }
      } finally {
        await stopWithStdin(child);
      }
    });
  }
});
