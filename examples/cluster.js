// node examples/cluster.js — node:cluster workers that print the real client of every request.
//   PORT (default 3000), WORKERS (default: one per CPU), TRUST_PROXY: your L4 proxy's addresses
//   or CIDR ranges, comma-separated (default 127.0.0.1, to try it on this machine).
'use strict';
const cluster = require('node:cluster');
const http = require('node:http');
const os = require('node:os');
const toa = require('node-toa');

if (cluster.isPrimary) {
  // The primary owns the listening socket: this one call, before fork(), is all it takes.
  toa.enableCluster();
  const workers = Number(process.env.WORKERS) || os.availableParallelism();
  for (let i = 0; i < workers; i++) cluster.fork();
  let announced = false;
  cluster.on('listening', (worker, { address, port }) => {
    if (!announced) console.log(`listening on ${address || '::'}:${port} with ${workers} workers`);
    announced = true;
  });
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const trustProxy = process.env.TRUST_PROXY || '127.0.0.1';
  http
    .createServer((req, res) => {
      const client = toa.realRemoteAddress(req.socket, { trustProxy });
      console.log(`worker ${process.pid}: ${req.method} ${req.url} from ${client.address}:${client.port} (${client.source})`);
      res.end(`hello ${client.address}:${client.port} (${client.source}) from worker ${process.pid}\n`);
    })
    .listen(Number(process.env.PORT || 3000));
}
