// The server of test/netns/soak.test.ts, in a process of its own: `node --expose-gc soak-server.js '<json>'`,
// using the built package (dist/), so that jest's sandbox and its other test files do not share
// its heap. Options (JSON): { mode: 'peer' | 'toa', host, trustProxy, sources: [client addresses],
// proxies: [proxy addresses] (toa), ackCapacity, ackSource }.
//
// Each connection is answered with `<address>:<port>` of realRemoteAddress(); the server checks
// that answer itself too: 'peer' mode, the socket's own peer; 'toa' mode, a TOA from a trusted
// proxy naming one of `sources` with a port that is not the proxy's.
//
// Protocol on stdio, one JSON object a line:
//   out {"event":"listening","port":P}
//   in  "measure"  -> once no connection is open: a full GC (several), then
//   out {"event":"measure","answered":N,"wrong":W,"open":0,"heapUsed":...,"external":...,
//        "arrayBuffers":...,"rss":...,"fds":F,"tap":{...}}
//   in  "exit" (or stdin closed) -> closes the server and exits 0.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const toa = require(path.join(__dirname, '..', '..', '..', 'dist', 'index.js'));

if (typeof global.gc !== 'function') {
  process.stderr.write('soak-server: run me with node --expose-gc\n');
  process.exit(2);
}
const opts = JSON.parse(process.argv[2]);
const sources = new Set(opts.sources);
const proxies = new Set(opts.proxies || []);
const resolveOptions = { trustProxy: opts.trustProxy };

let answered = 0;
let wrong = 0;
let open = 0;
const wrongExamples = [];
let idleWaiters = [];

function check(a, socket) {
  if (opts.mode === 'peer') {
    return a.source === 'peer' && a.port === socket.remotePort && a.address === socket.remoteAddress && sources.has(a.address);
  }
  return (
    a.source === 'toa' &&
    sources.has(a.address) &&
    a.proxy !== undefined &&
    proxies.has(a.proxy.address) &&
    a.proxy.port === socket.remotePort &&
    a.port !== socket.remotePort
  );
}

const server = toa.enable(
  net.createServer((socket) => {
    open++;
    socket.on('error', () => undefined);
    socket.once('close', () => {
      open--;
      if (open === 0) for (const w of idleWaiters.splice(0)) w();
    });
    const a = toa.realRemoteAddress(socket, resolveOptions);
    if (!check(a, socket)) {
      wrong++;
      if (wrongExamples.length < 5) wrongExamples.push({ answer: a, remote: `${socket.remoteAddress}:${socket.remotePort}` });
    }
    answered++;
    socket.end(`${a.address}:${a.port}`);
  }),
  // The ACK tap too: its native table must stay bounded and drained as well.
  opts.ackCapacity ? { ack: { capacity: opts.ackCapacity, source: opts.ackSource || 'auto' } } : {},
);

const idle = () => new Promise((resolve) => (open === 0 ? resolve() : idleWaiters.push(resolve)));
const tick = () => new Promise((resolve) => setImmediate(resolve));

async function measure() {
  await idle();
  // Closed sockets are garbage only after their close callbacks ran; then collect until stable.
  for (let i = 0; i < 4; i++) {
    await tick();
    global.gc();
  }
  const m = process.memoryUsage();
  const port = server.address().port;
  const tap = toa.stats().taps.find((t) => t.port === port) || null;
  return {
    event: 'measure',
    answered,
    wrong,
    wrongExamples,
    open,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    rss: m.rss,
    fds: fs.readdirSync('/proc/self/fd').length,
    tap,
  };
}

function send(o) {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

let exiting = false;
function exit() {
  if (exiting) return;
  exiting = true;
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}

server.on('error', (e) => {
  process.stderr.write(`soak-server: ${e.stack || e}\n`);
  process.exit(1);
});
server.listen(0, opts.host, () => {
  send({ event: 'listening', port: server.address().port });
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'measure') measure().then(send);
    else if (line === 'exit') exit();
  });
  process.stdin.on('end', exit);
});
