// An unmodified node:http app for flood.test.ts: it knows nothing of node-toa (the test starts
// it with `node -r dist/preload.js`) and answers every request with what Node says of the
// connection, req.socket.remoteAddress and remotePort, as JSON, then closes the connection.
// Prints "listening on <host>:<port>" once listening (PORT, HOST: default 0 and 0.0.0.0).
'use strict';
const http = require('node:http');

const server = http.createServer((req, res) => {
  const { remoteAddress, remotePort } = req.socket;
  res.setHeader('connection', 'close');
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ remoteAddress, remotePort }));
});

server.listen(Number(process.env.PORT || 0), process.env.HOST || '0.0.0.0', () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
// Bounded: ends when its parent closes stdin (the test), whatever happened to the test.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
