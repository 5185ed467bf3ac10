// One TCP connection where the server speaks first: connects, sends nothing until the server's
// first line, then one line of its own, reads to the end, and prints
//   {"localPort":N,"received":"..."}
// With the client silent until then, a TOA the server's tap sees before that line can only have
// come in the handshake ACK, not in a data packet (test/netns/sockops.test.ts). Bounded by timeoutMs.
//
//   node greet-client.js PORT [HOST] [TIMEOUT_MS]
'use strict';
const net = require('node:net');

const [port, host = '127.0.0.1', timeoutMs = '10000'] = process.argv.slice(2);
const socket = net.connect({ port: Number(port), host });
let received = '';
let answered = false;
let localPort = 0;
socket.on('connect', () => (localPort = socket.localPort));
socket.setEncoding('utf8');
socket.setTimeout(Number(timeoutMs), () => {
  process.stderr.write('greet-client: timed out\n');
  process.exit(2);
});
socket.on('data', (d) => {
  received += d;
  if (!answered && received.includes('\n')) {
    answered = true;
    socket.write('hello from the client\n');
  }
});
socket.on('end', () => {
  process.stdout.write(`${JSON.stringify({ localPort, received })}\n`);
  socket.end();
});
socket.on('error', (e) => {
  process.stderr.write(`greet-client: ${e.message}\n`);
  process.exit(1);
});
