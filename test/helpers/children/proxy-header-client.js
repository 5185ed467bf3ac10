// One HTTP request on a fresh connection, after the given bytes (a PROXY header, in hex; '-' for
// none), written in the same segment. Prints {"localPort":N,"response":"..."}. Runs inside a
// sock_ops cgroup (test/netns/proxy-protocol-precedence.test.ts), so its SYN may carry a TOA too.
//
//   node proxy-header-client.js PORT HEX [TIMEOUT_MS]
'use strict';
const net = require('node:net');

const [port, hex, timeoutMs = '10000'] = process.argv.slice(2);
const prefix = hex === '-' ? Buffer.alloc(0) : Buffer.from(hex, 'hex');
const socket = net.connect({ port: Number(port), host: '127.0.0.1' });
let response = '';
let localPort = 0;
socket.setEncoding('utf8');
socket.setTimeout(Number(timeoutMs), () => {
  process.stderr.write('proxy-header-client: timed out\n');
  process.exit(2);
});
socket.on('connect', () => {
  localPort = socket.localPort;
  socket.write(Buffer.concat([prefix, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
});
socket.on('data', (d) => (response += d));
socket.on('end', () => {
  process.stdout.write(`${JSON.stringify({ localPort, response })}\n`);
  socket.end();
});
socket.on('error', (e) => {
  process.stderr.write(`proxy-header-client: ${e.message}\n`);
  process.exit(1);
});
