// A node:http2 secure server with the compatibility API: req.socket (a Proxy) and the session's
// socket. Certificate and key from KEY_FILE and CERT_FILE. Start it with:
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node -r node-toa/preload http2.js
'use strict';
const fs = require('node:fs');
const http2 = require('node:http2');

const options = { key: fs.readFileSync(process.env.KEY_FILE), cert: fs.readFileSync(process.env.CERT_FILE) };
const server = http2.createSecureServer(options, (req, res) => {
  const { remoteAddress, remotePort, remoteFamily } = req.socket;
  const session = req.stream.session.socket;
  console.log(`${remoteAddress} ${req.method} ${req.url}`);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ remoteAddress, remotePort, remoteFamily, session: { remoteAddress: session.remoteAddress, remotePort: session.remotePort } }));
});

server.listen(Number(process.env.PORT || 8443), process.env.HOST, () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
