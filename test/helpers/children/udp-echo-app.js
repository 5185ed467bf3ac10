// An unmodified dgram app (it knows nothing of node-toa): an echo server that answers each datagram
// to rinfo with what rinfo said. Prints {"port": N} once bound; exits when stdin closes.
// Usage: node [-r node-toa/preload] udp-echo-app.js <host> [udp4|udp6]
'use strict';
const dgram = require('node:dgram');

const host = process.argv[2] || '127.0.0.1';
const socket = dgram.createSocket(process.argv[3] || (host.includes(':') ? 'udp6' : 'udp4'));
socket.on('message', (msg, rinfo) => {
  socket.send(`${rinfo.address} ${rinfo.port} ${rinfo.source || 'node'} ${msg}`, rinfo.port, rinfo.address);
});
// A client socket of the app: Node binds it by itself on send(), and node-toa leaves it alone.
const client = dgram.createSocket('udp4');
client.on('message', (msg, rinfo) => {
  process.stdout.write(`${JSON.stringify({ client: msg.toString('latin1'), source: rinfo.source ?? null })}\n`);
});
socket.bind(0, host, () => {
  process.stdout.write(`${JSON.stringify({ port: socket.address().port, clientPort: null })}\n`);
});
process.stdin.on('data', (d) => {
  // "send <port>": the app's client sends one datagram to 127.0.0.1:<port>.
  const m = /^send (\d+)/.exec(d.toString());
  if (m) client.send('from the app', Number(m[1]), '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ clientPort: client.address().port })}\n`));
});
process.stdin.on('end', () => {
  socket.close();
  client.close();
});
