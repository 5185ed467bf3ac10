// The other side of greet-client.js, for a server that runs inside a ToaCgroup: listens on
// 127.0.0.1 (port 0), prints {"port":N}, and for each connection writes a line first, answers
// the client's line, and ends. Exits after `connections` connections closed, or at timeoutMs.
//
//   node greet-server.js [CONNECTIONS] [TIMEOUT_MS]
'use strict';
const net = require('node:net');

const [connections = '1', timeoutMs = '30000'] = process.argv.slice(2);
let closed = 0;
const server = net.createServer((socket) => {
  socket.on('error', () => undefined);
  socket.write('hello from the server\n');
  socket.once('data', () => socket.end('bye\n'));
  socket.on('close', () => {
    if (++closed >= Number(connections)) server.close(() => process.exit(0));
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
setTimeout(() => process.exit(2), Number(timeoutMs)).unref();
