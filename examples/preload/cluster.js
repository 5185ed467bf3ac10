// node:cluster with two workers sharing one port (round-robin: the primary accepts). The preload
// runs in the primary and in each worker (cluster.fork() passes -r node-toa/preload on):
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node -r node-toa/preload cluster.js
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');

const WORKERS = 2;

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', (worker, address) => {
    if (++listening === WORKERS) console.log(`listening on ${address.address ?? '::'}:${address.port}`);
  });
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers)) worker.kill();
    process.exit(0);
  });
} else {
  http
    .createServer((req, res) => {
      const { remoteAddress, remotePort, remoteFamily } = req.socket;
      console.log(`worker ${process.pid}: ${remoteAddress} ${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ pid: process.pid, remoteAddress, remotePort, remoteFamily }));
    })
    .listen(Number(process.env.PORT || 3000), process.env.HOST);
}
