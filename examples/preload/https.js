// A plain node:https server (certificate and key from KEY_FILE and CERT_FILE). Start it with:
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node -r node-toa/preload https.js
'use strict';
const fs = require('node:fs');
const https = require('node:https');

const options = { key: fs.readFileSync(process.env.KEY_FILE), cert: fs.readFileSync(process.env.CERT_FILE) };
const server = https.createServer(options, (req, res) => {
  const { remoteAddress, remotePort, remoteFamily } = req.socket;
  console.log(`${remoteAddress} ${req.method} ${req.url}`);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ remoteAddress, remotePort, remoteFamily }));
});

server.listen(Number(process.env.PORT || 3443), process.env.HOST, () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
