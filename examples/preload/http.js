// A plain node:http server with pino-http's request log (`req.remoteAddress`). GET /upstream
// also makes a request of its own, to itself: that client socket's remoteAddress is the server
// it connected to, as always. Start it with the preload:
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node -r node-toa/preload http.js
'use strict';
const http = require('node:http');
const logger = require('pino-http')();

const server = http.createServer((req, res) => {
  logger(req, res);
  const { remoteAddress, remotePort, remoteFamily } = req.socket;
  const mine = { remoteAddress, remotePort, remoteFamily };
  if (req.url !== '/upstream') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(mine));
    return;
  }
  const out = http.get({ host: '127.0.0.1', port: server.address().port, path: '/', agent: false }, (answer) => {
    let body = '';
    answer.setEncoding('utf8').on('data', (d) => (body += d));
    answer.on('end', () => {
      const { remoteAddress: a, remotePort: p, remoteFamily: f } = out.socket;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ...mine, client: { remoteAddress: a, remotePort: p, remoteFamily: f }, upstream: JSON.parse(body) }));
    });
  });
});

server.listen(Number(process.env.PORT || 3000), process.env.HOST, () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
