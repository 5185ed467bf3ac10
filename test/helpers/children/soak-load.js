// The client of test/netns/soak.test.ts, a process of its own (the client and the server under test
// each get a core): `node soak-load.js '<json>'` with { host, port, total, concurrency,
// timeLimitMs, sources }. Opens `total` connections (at most `concurrency` at once) to host:port,
// from the source addresses in turn, and checks that each answer is `<its own address>:<its own
// port>`: what the server's realRemoteAddress() must say, over loopback (the peer) or through the
// TOA proxy (the TOA in the SYN). Prints one JSON line: { finished, failed, wrong, wrongExamples }.
'use strict';
const net = require('node:net');

const { host, port, total, concurrency, timeLimitMs, sources } = JSON.parse(process.argv[2]);
const deadline = Date.now() + timeLimitMs;
let started = 0;
let finished = 0;
let failed = 0;
let wrong = 0;
const wrongExamples = [];
const failures = [];

function next() {
  if (started >= total || Date.now() > deadline) {
    if (finished === started) {
      process.stdout.write(`${JSON.stringify({ finished, failed, wrong, wrongExamples, failures })}\n`);
      process.exit(0);
    }
    return;
  }
  const source = sources[started++ % sources.length];
  const socket = net.connect({ port, host, localAddress: source });
  let expected = null;
  let body = '';
  socket.setEncoding('utf8');
  socket.once('connect', () => (expected = `${socket.localAddress}:${socket.localPort}`));
  socket.on('data', (d) => (body += d));
  socket.on('error', (e) => {
    failed++;
    if (failures.length < 5) failures.push(e.message);
  });
  socket.on('close', () => {
    if (expected === null || body !== expected || !expected.startsWith(`${source}:`)) {
      wrong++;
      if (wrongExamples.length < 5) wrongExamples.push({ expected, body });
    }
    finished++;
    next();
  });
}

for (let i = 0; i < concurrency; i++) next();
