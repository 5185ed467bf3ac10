// UDP with worker threads and node:cluster: enable() inside a worker thread (its own copy of
// node-toa and of the addon), and NODE_TOA_UDP under the preload in cluster workers sharing one
// port; in both, replies reach the client through the SPP relay with the header echoed.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startWithHello, stopWithStdin } from '../helpers/process/line-process';
import { UdpClient, UdpRelay } from '../helpers/producers/udp-relay';

const ROOT = path.join(__dirname, '..', '..');
const claim = (r: { port: number }) => ({ address: '203.0.113.7', port: r.port });

const stops: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s()));
});

it('enable() in a worker thread: the client, and replies with the SPP header', async () => {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const dgram = require('node:dgram');
    const toa = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
    const socket = dgram.createSocket('udp4');
    socket.bind(0, '127.0.0.1', () => {
      toa.enable(socket, { trustProxy: '127.0.0.1', spp: true });
      socket.on('message', (msg, rinfo) => socket.send('thread ' + rinfo.address + ' ' + rinfo.source + ' ' + msg, rinfo.port, rinfo.address));
      parentPort.postMessage(socket.address().port);
    });
    parentPort.on('message', () => socket.close(() => parentPort.close()));
  `;
  const worker = new Worker(code, { eval: true });
  stops.push(() => worker.terminate());
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const relay = await UdpRelay.start({ mode: 'spp', server: { address: '127.0.0.1', port }, host: '127.0.0.1', claim });
  const client = await UdpClient.start('127.0.0.2');
  stops.push(() => relay.close(), () => client.close());
  client.send('a', relay.endpoint);
  client.send('b', relay.endpoint);
  expect((await client.replies(2)).sort()).toEqual(['thread 203.0.113.7 spp a', 'thread 203.0.113.7 spp b']);
  expect(relay.replies).toEqual({ withHeader: 2, withoutHeader: 0, wrongHeader: 0 });
});

it('node:cluster workers under -r node-toa/preload with NODE_TOA_UDP=spp share the port, each answering its client through the relay', async () => {
  const { child, hello } = await startWithHello<{ port: number; workers: number[] }>(
    [process.execPath, '-r', 'node-toa/preload', path.join(__dirname, '..', 'helpers', 'children', 'udp-cluster.js')],
    30_000,
    { ...process.env, NODE_TOA_UDP: 'spp', NODE_TOA_TRUST_PROXY: '127.0.0.1', NODE_TOA_ACK: 'off', UDP_WORKERS: '2' },
  );
  stops.push(() => stopWithStdin(child));
  const relay = await UdpRelay.start({ mode: 'spp', server: { address: '127.0.0.1', port: hello.port }, host: '127.0.0.1', claim });
  stops.push(() => relay.close());
  // Several clients, so that the kernel spreads their flows over both workers' reads.
  const clients = await Promise.all(Array.from({ length: 6 }, () => UdpClient.start('127.0.0.2')));
  stops.push(...clients.map((c) => () => c.close()));
  for (const c of clients) for (let i = 0; i < 3; i++) c.send(`m${i}`, relay.endpoint);
  const pids = new Set<string>();
  for (const c of clients) {
    const replies = await c.replies(3);
    expect(replies).toHaveLength(3);
    for (const r of replies) {
      const [pid, address, port, source] = r.split(' ');
      pids.add(pid);
      expect([address, Number(port), source]).toEqual(['203.0.113.7', c.endpoint.port, 'spp']);
    }
  }
  expect(relay.replies).toEqual({ withHeader: 18, withoutHeader: 0, wrongHeader: 0 });
  for (const pid of pids) expect(hello.workers.map(String)).toContain(pid);
});
