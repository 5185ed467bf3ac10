// One sock_ops program per cgroup, shared by the processes of it that tap a port (issue 18). A
// node:cluster app's workers each used to load and attach their own, so every connection ran the
// program, and copied its packets, once per worker. End to end: unmodified apps under the preload
// (NODE_TOA_ACK=sockops), clients whose kernel writes TOA into the handshake ACK. Which program each
// process holds attached is read from its descriptors (/proc/<pid>/fdinfo).
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { enable, realRemoteAddress, stats } from '../../lib/index';
import { json, watchLines } from '../helpers/process/line-process';
import { childEnv } from '../helpers/process/real-process';
import { createdLinks, linkedPrograms } from '../helpers/process/taps';
import { closeAfterEach } from '../helpers/sockets/pair';
import { ToaCgroup, describeSockops } from '../helpers/sockops';

const CHILDREN = path.join(__dirname, '..', 'helpers', 'children');
const PRELOAD = path.join(__dirname, '..', '..', 'dist', 'preload.js');
const CLUSTER_APP = path.join(CHILDREN, 'echo-cluster.js');
const ECHO_APP = path.join(CHILDREN, 'remote-echo-app.js');
const CLIENT = path.join(CHILDREN, 'remote-check-client.js');
const LINE_TIMEOUT_MS = 15_000;

interface App {
  child: ChildProcess;
  /** Resolves to the first line (parsed by `parse`) for which it returns a value; bounded. */
  next<T>(parse: (line: string) => T | undefined): Promise<T>;
  send(line: string): void;
}

const running = new Set<ChildProcess>();

function start(script: string, env: Record<string, string>): App {
  const child = spawn(process.execPath, ['-r', PRELOAD, script], {
    env: { ...childEnv(), NODE_TOA_ACK: 'sockops', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const watch = watchLines(child, path.basename(script));
  return {
    child,
    send: (line) => child.stdin!.write(`${line}\n`),
    next: (parse) => watch.next(parse, LINE_TIMEOUT_MS),
  };
}

interface Ready {
  ready: true;
  port: number;
  workers: number[];
}

async function startCluster(workers: number): Promise<{ app: App; ready: Ready }> {
  const app = start(CLUSTER_APP, { WORKERS: String(workers), NODE_TOA_TRUST_PROXY: 'loopback' });
  return { app, ready: await app.next((l) => json<Ready>(l)?.ready === true ? json<Ready>(l) : undefined) };
}

async function startEcho(trust: string): Promise<{ app: App; port: number }> {
  const app = start(ECHO_APP, { NODE_TOA_TRUST_PROXY: trust, HOST: '127.0.0.1' });
  const port = await app.next((l) => /^listening on .*:(\d+)$/.exec(l)?.[1]);
  return { app, port: Number(port) };
}

interface Report {
  count: number;
  client: number;
  peer: number;
  wrong: number;
  failures: number;
}

/** `count` connections one after another from the cgroup, each answer sorted (remote-check-client.js). */
async function check(group: ToaCgroup, port: number, count: number): Promise<Report> {
  const run = await group.run(process.execPath, [CLIENT, '--port', String(port), '--count', String(count)], { timeoutMs: 30_000 });
  const report = json<Report>(run.stdout.trim().split('\n').pop() ?? '');
  if (report === undefined) throw new Error(`remote-check-client printed nothing (${run.code ?? run.signal}): ${run.stderr}`);
  return report;
}

describeSockops('one sock_ops program per cgroup, shared by its processes', () => {
  let group: ToaCgroup;
  const servers = closeAfterEach();
  beforeAll(async () => {
    group = await ToaCgroup.create({ packets: ['ack'] });
  });
  afterAll(() => group?.close());
  afterEach(async () => {
    await Promise.all(
      [...running].map(
        (child) =>
          new Promise<void>((resolve) => {
            running.delete(child);
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.stdin!.end();
          }),
      ),
    );
  });

  it("a cluster app's workers hold one program between them, and each answers the client from the handshake ACK", async () => {
    const { app, ready } = await startCluster(3);
    const programs = ready.workers.map(linkedPrograms);
    expect(programs.map((ids) => ids.length)).toEqual([1, 1, 1]);
    expect(new Set(programs.flat()).size).toBe(1);
    // The round-robin primary taps nothing: it holds none.
    expect(linkedPrograms(app.child.pid!)).toEqual([]);
    expect(await check(group, ready.port, 60)).toMatchObject({ count: 60, client: 60, peer: 0, wrong: 0, failures: 0 });
  });

  it('a worker that leaves takes neither the program nor the port and its trust from the others: the one that attached it, closing its server, then one killed', async () => {
    const { app, ready } = await startCluster(3);
    const [program] = linkedPrograms(ready.workers[0]);
    // The worker whose link is the one BPF_LINK_CREATE made; the others took it by id. None made it
    // when another process of the cgroup (another test file's) had attached the program first:
    // then the first worker leaves first.
    const attacher = ready.workers.find((pid) => createdLinks(pid) === 1) ?? ready.workers[0];
    const others = ready.workers.filter((pid) => pid !== attacher);
    // Closing its server unwatches the port and releases its trust entries: the others still hold
    // theirs, so the program still copies the trusted proxy's ACK for them.
    app.send(`close ${attacher}`);
    await app.next((l) => (json<{ closed?: number }>(l)?.closed === attacher ? true : undefined));
    expect(others.map(linkedPrograms)).toEqual([[program], [program]]);
    expect(await check(group, ready.port, 30)).toMatchObject({ count: 30, client: 30, peer: 0, wrong: 0, failures: 0 });
    process.kill(others[0], 'SIGKILL');
    await app.next((l) => (json<{ closed?: number }>(l)?.closed === others[0] ? true : undefined));
    expect(linkedPrograms(others[1])).toEqual([program]);
    expect(await check(group, ready.port, 30)).toMatchObject({ count: 30, client: 30, peer: 0, wrong: 0, failures: 0 });
  });

  it('two apps with different trust share it, and each decides with its own trustProxy', async () => {
    const trusting = await startEcho('loopback');
    const doubting = await startEcho('192.0.2.1');
    const [program] = linkedPrograms(trusting.app.child.pid!);
    expect(linkedPrograms(doubting.app.child.pid!)).toEqual([program]);
    expect(await check(group, trusting.port, 20)).toMatchObject({ count: 20, client: 20, peer: 0, wrong: 0, failures: 0 });
    expect(await check(group, doubting.port, 20)).toMatchObject({ count: 20, client: 0, peer: 20, wrong: 0, failures: 0 });
  });

  it('a process that exits with its server open takes its port and its trust with it', async () => {
    // This process holds the program too, so it outlives the app: what the app leaves in its maps
    // would stay.
    const port = async (trustProxy: string, at = 0) => {
      const server = http.createServer((req, res) => {
        const real = realRemoteAddress(req.socket, { trustProxy });
        res.setHeader('connection', 'close');
        res.end(JSON.stringify({ remoteAddress: real.address, remotePort: real.port }));
      });
      servers.push(server);
      enable(server, { ack: { source: 'sockops' }, trustProxy });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(at, '127.0.0.1', resolve));
      return (server.address() as AddressInfo).port;
    };
    await port('loopback');
    const leaving = await startEcho('loopback');
    expect(linkedPrograms(leaving.app.child.pid!)).toEqual(linkedPrograms(process.pid));
    expect(await check(group, leaving.port, 5)).toMatchObject({ client: 5, peer: 0, wrong: 0 });
    // remote-echo-app ends with process.exit(0), its server still listening.
    const exited = new Promise((resolve) => leaving.app.child.once('exit', resolve));
    leaving.app.child.stdin!.end();
    await exited;
    // Its port again, in this process, trusting another proxy: the program copies this sender's
    // ACK only if the app's entry for the port (loopback) stayed behind.
    const again = await port('192.0.2.1', leaving.port);
    expect(again).toBe(leaving.port);
    expect(await check(group, again, 1)).toMatchObject({ client: 0, peer: 1, wrong: 0 });
    expect(stats().taps.find((t) => t.port === again)).toMatchObject({ lookups: 1, hits: 0, toaFound: 0 });
  });
});
