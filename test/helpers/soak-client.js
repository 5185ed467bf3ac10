// Opens `total` connections (at most `concurrency` at once) to 127.0.0.1:port from several
// source addresses, checks that each answer is its own source address, and prints a JSON summary.
// A process of its own, so that the client and the server under test each get a core.
'use strict';
const net = require('node:net');

const [port, total, concurrency, timeLimitMs, ...sources] = process.argv.slice(2);
const deadline = Date.now() + Number(timeLimitMs);
let started = 0;
let finished = 0;
let failed = 0;
let wrong = 0;

function next() {
  if (started >= Number(total) || Date.now() > deadline) {
    if (finished === started) {
      process.stdout.write(`${JSON.stringify({ finished, failed, wrong })}\n`);
      process.exit(0);
    }
    return;
  }
  const source = sources[started++ % sources.length];
  const socket = net.connect({ port: Number(port), host: '127.0.0.1', localAddress: source });
  let body = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => (body += d));
  socket.on('error', () => failed++);
  socket.on('close', () => {
    if (body !== source) wrong++;
    finished++;
    next();
  });
}

for (let i = 0; i < Number(concurrency); i++) next();
